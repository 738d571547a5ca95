"""Run by test_topics in a fresh interpreter: migrate an empty database to just before knowledge 0005, store the
demo knowledge base as it was (one pair per language, bench/data/demo_qa_pairs.json) without the "谢谢" twin, a
pair of the shop's own, and a conversation and a review decision about a Chinese twin; migrate to the end and print
what is there (JSON)."""

import json
from pathlib import Path

from tests.fresh_database import migrated_to, migrated_to_the_end

BEFORE = [("knowledge", "0004_followups"), ("review", "0002_suggested_pairs"), ("conversations", "0003_site")]
OLD_DEMO = Path(__file__).resolve().parent.parent / "bench" / "data" / "demo_qa_pairs.json"


def main() -> None:
    model = migrated_to(BEFORE)
    pairs, alternates, followups = model("knowledge", "QAPair"), model("knowledge", "AlternateQuestion"), []
    ids = {}
    for row in json.loads(OLD_DEMO.read_text(encoding="utf-8")):
        if row["question"] == "谢谢":
            continue
        pair = pairs.objects.create(
            question=row["question"],
            answer=row["answer"],
            language=row["language"],
            category=row["category"],
            handoff=row["handoff"],
        )
        ids[pair.question] = pair.pk
        alternates.objects.bulk_create(alternates(pair=pair, text=text) for text in row["alternates"])
        followups += [(pair.pk, question, order) for order, question in enumerate(row.get("followups", []))]
    model("knowledge", "FollowUp").objects.bulk_create(
        model("knowledge", "FollowUp")(pair_id=pk, followup_id=ids[question], order=order)
        for pk, question, order in followups
    )
    pairs.objects.create(question="Do you sell gift cards?", answer="Yes, from 10 to 500 euros.", language="en")
    conversation = model("conversations", "Conversation").objects.create(token="t", language="zh")
    message = model("conversations", "Message")
    asked = message.objects.create(
        conversation=conversation, sender="customer", text="退货", suggested_pair_id=ids["退货政策是什么？"]
    )
    message.objects.create(
        conversation=conversation, sender="bot", text="...", reply_to=asked, pair_id=ids["退货政策是什么？"]
    )
    model("review", "ReviewItem").objects.create(message=asked, status="attached", pair_id=ids["退货政策是什么？"])

    migrated_to_the_end()
    from chatbot.conversations.models import Message
    from chatbot.knowledge.models import AlternateQuestion, FollowUp, PairAnswer, QAPair
    from chatbot.review.models import ReviewItem

    returns = QAPair.objects.get(question="What is your return policy?")
    print(
        json.dumps(
            {
                "active": QAPair.objects.filter(is_active=True).count(),
                "redirects": QAPair.objects.filter(is_active=False, merged_into__isnull=False).count(),
                "answers": {code: PairAnswer.objects.filter(language=code).count() for code in ("en", "zh")},
                "hello": sorted(QAPair.objects.get(question="Hello").answer_texts()),
                "hello_has_chinese_question": QAPair.objects.get(question="Hello")
                .alternates.filter(text="你好")
                .exists(),
                "chinese_redirect": QAPair.objects.get(question="你好").merged_into.question,
                "thank_you": sorted(QAPair.objects.get(question="Thank you").answer_texts()),
                "gift_cards": QAPair.objects.get(question="Do you sell gift cards?").answer_texts(),
                "returns_followups": [link.followup.question for link in returns.followup_links.all()],
                "followups_to_inactive": FollowUp.objects.filter(followup__is_active=False).count(),
                "message_pairs": sorted(
                    {pk for pair in Message.objects.values_list("pair_id", "suggested_pair_id") for pk in pair if pk}
                )
                == [returns.pk],
                "review_pair": ReviewItem.objects.get().pair_id == returns.pk,
                "alternates": AlternateQuestion.objects.filter(pair__is_active=True).count(),
            }
        )
    )


if __name__ == "__main__":
    main()
