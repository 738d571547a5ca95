"""Run by test_deletion in a fresh interpreter: migrate an empty database to just before knowledge 0003, store
review-queue rows as the code before it made them, migrate to the end and print what is left (JSON)."""

import json

from tests.fresh_database import migrated_to, migrated_to_the_end

BEFORE = [("knowledge", "0002_out_of_scope"), ("review", "0001_initial"), ("conversations", "0001_initial")]


def main() -> None:
    model = migrated_to(BEFORE)
    pair = model("knowledge", "QAPair").objects.create(question="Where is my order?", answer="In My Orders.")
    conversation = model("conversations", "Conversation").objects.create(token="t")
    parcel, bike = (
        model("conversations", "Message").objects.create(conversation=conversation, sender="customer", text=text)
        for text in ("where   is my parcel", "fix my bike")
    )
    model("review", "ReviewItem").objects.create(message=parcel, status="attached", pair=pair)
    model("review", "ReviewItem").objects.create(message=bike, status="out_of_scope")
    for text, source in (("where is my parcel", "log"), ("from a deleted conversation", "log"), ("curated", "curated")):
        model("knowledge", "AlternateQuestion").objects.create(pair=pair, text=text, source=source)
    for text in ("fix my bike", "an orphan"):
        model("knowledge", "OutOfScopeExample").objects.create(text=text, source="log")
    migrated_to_the_end()
    from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample

    linked = {parcel.pk: "parcel", bike.pk: "bike", None: None}
    rows = [
        (row.text, row.source, linked[row.source_message_id])
        for rows in (AlternateQuestion.objects.order_by("id"), OutOfScopeExample.objects.order_by("id"))
        for row in rows
    ]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
