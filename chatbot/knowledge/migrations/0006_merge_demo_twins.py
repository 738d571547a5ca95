# The demo knowledge base had each English pair followed by its Chinese twin (the same answer in two languages):
# where both twins of a pair are in the database, the Chinese one is merged into the English one (one topic,
# answered in both languages). Other pairs are merged by an operator (the "Merge into one topic" admin action).
# The model in service keeps predicting the merged ids, answered by the survivor until the next training.

from django.db import migrations

from chatbot.knowledge.merging import pairs_merge_rows

# (English question, Chinese question) of the demo's 64 topics, as bench/data/demo_qa_pairs.json has them.
DEMO_TWINS = [
    ('Hello', '你好'),
    ('Thank you', '谢谢'),
    ('Can I talk to a human agent?', '怎么联系人工客服？'),
    ('What are your customer service hours?', '客服工作时间是几点到几点？'),
    ('Where is my order?', '我的订单到哪里了？'),
    ("Tracking says delivered but I didn't get my package", '物流显示已签收，但我没收到货怎么办？'),
    ('How much does shipping cost?', '运费怎么收？'),
    ('How long does delivery take?', '下单后多久能收到货？'),
    ('Do you offer express delivery?', '可以加急配送吗？'),
    ('Do you ship internationally?', '可以寄到国外吗？'),
    ('Will I have to pay customs duties?', '国际订单需要交关税吗？'),
    ('Can I pick up my order at a pickup point?', '可以自提吗？'),
    ('I missed the delivery, what now?', '快递来的时候我不在家怎么办？'),
    ('Why did I only receive part of my order?', '为什么订单只收到了一部分商品？'),
    ('Do you deliver to remote areas like Xinjiang or Tibet?', '新疆、西藏等偏远地区能送吗？'),
    ('How do I cancel my order?', '怎么取消订单？'),
    ('How do I change my shipping address?', '下单后可以修改收货地址吗？'),
    ('Can I add or change items in an order I already placed?', '已经下单了还能加购或修改商品吗？'),
    ("I didn't receive an order confirmation email", '下单后没收到确认短信或邮件？'),
    ('Where can I see my past orders?', '在哪里查看历史订单？'),
    ('Can I order without creating an account?', '不注册可以下单吗？'),
    ('How do pre-orders work?', '预售商品怎么购买？'),
    ('Can I get notified when an item is back in stock?', '缺货商品到货了能通知我吗？'),
    ('How do I find my size?', '尺码怎么选？'),
    ('Are your products genuine?', '你们的商品是正品吗？'),
    ('Will the electronics work in my country?', '电器在国外能用吗？'),
    ('How do I write a product review?', '怎么评价商品？'),
    ('What is your return policy?', '退货政策是什么？'),
    ('How do I return an item?', '怎么申请退货？'),
    ('Who pays for return shipping?', '退货运费谁承担？'),
    ('Can I exchange an item for a different size or colour?', '可以换尺码或颜色吗？'),
    ('My item arrived damaged', '商品到货时已经损坏怎么办？'),
    ('I received the wrong item', '收到的商品发错了怎么办？'),
    ('When will I get my refund?', '退款多久能到账？'),
    ('Do I get my coupon and points back if I return an order?', '退货后优惠券和积分会退回吗？'),
    ('What payment methods do you accept?', '支持哪些支付方式？'),
    ('Why did my payment fail?', '付款失败怎么办？'),
    ('Can I pay in installments?', '可以分期付款吗？'),
    ('Which currency will I be charged in?', '用什么货币结算？'),
    ('How do I get an invoice (fapiao)?', '怎么开发票？'),
    ('How do I use a promo code?', '优惠码怎么使用？'),
    ("Why isn't my coupon working?", '优惠券用不了是什么原因？'),
    ('Is there a discount for new customers?', '新用户有优惠吗？'),
    ('When is your next sale?', '最近有什么促销活动？'),
    ('How do I earn membership points?', '会员积分怎么获得？'),
    ('What are the membership levels and benefits?', '会员等级有哪些权益？'),
    ('How do I use my points?', '积分怎么使用？'),
    ('What warranty do electronics have?', '电子产品保修多久？'),
    ('How do I get a faulty product repaired under warranty?', '产品坏了怎么申请保修？'),
    ('How can I buy a gift card?', '怎么购买礼品卡？'),
    ('How do I use a gift card or check its balance?', '礼品卡怎么使用和查余额？'),
    ('The price dropped after I bought it, can I get the difference?', '买完降价了可以退差价吗？'),
    ('Do you price match other stores?', '别家更便宜，能按别家价格卖吗？'),
    ('Do you offer installation?', '提供安装服务吗？'),
    ('Do you offer gift wrapping?', '可以包装成礼物吗？'),
    ('Can I trade in my old device?', '可以以旧换新吗？'),
    ('How do I delete my account and personal data?', '怎么注销账户并删除个人信息？'),
    ('How do I stop marketing emails and SMS?', '怎么退订营销短信和邮件？'),
    ('Do you offer business or bulk purchases?', '支持企业采购或批量购买吗？'),
    ('How do I create an account?', '怎么注册账号？'),
    ('I forgot my password', '忘记密码怎么办？'),
    ("I can't log in to my account", '账号登录不了怎么办？'),
    ('How do I change the phone number or email on my account?', '怎么修改账号绑定的手机号或邮箱？'),
    ('Do you have a mobile app?', '有手机 App 吗？'),
]


def merge_demo_twins(apps, schema_editor):
    QAPair = apps.get_model("knowledge", "QAPair")
    questions = [question for twin in DEMO_TWINS for question in twin]
    ids = dict(QAPair.objects.filter(question__in=questions, merged_into__isnull=True).values_list("question", "pk"))
    for english, chinese in DEMO_TWINS:
        if english in ids and chinese in ids:
            pairs_merge_rows(apps.get_model, survivor_id=ids[english], merged_ids=[ids[chinese]])


class Migration(migrations.Migration):

    dependencies = [
        ('knowledge', '0005_pair_answers'),
        ('conversations', '0003_site'),
        ('review', '0002_suggested_pairs'),
    ]

    operations = [
        migrations.RunPython(merge_demo_twins, migrations.RunPython.noop),
    ]
