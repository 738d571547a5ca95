"""The admin's log-in is throttled per account and per address; its import refuses an oversized file clearly."""

import itertools
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chatbot.knowledge.models import QAPair

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "the-right-password-42"
_addresses = (f"10.13.0.{n}" for n in itertools.count(1))


@pytest.fixture
def staff(django_user_model, request):
    name = f"staff-{request.node.name[-40:]}"
    return django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)


def log_in(client: Client, username: str, password: str, address: str):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_an_account_is_locked_after_five_failures_even_with_the_right_password(staff, settings):
    # given
    client, address = Client(), next(_addresses)
    for _ in range(settings.CHATBOT_LOGIN_MAX_FAILURES_PER_ACCOUNT):
        assert log_in(client, staff.username, "wrong", address).status_code == 200
    # when: the right password, from the same address and from another one
    responses = [log_in(client, staff.username, PASSWORD, a) for a in (address, next(_addresses))]
    # then
    for response in responses:
        assert response.status_code == 200 and "_auth_user_id" not in client.session
        assert "Too many failed log-in attempts. Try again in 15 minute(s)." in response.content.decode()


def test_a_success_resets_the_count_of_its_account(staff, settings):
    client, address = Client(), next(_addresses)
    for _ in range(settings.CHATBOT_LOGIN_MAX_FAILURES_PER_ACCOUNT - 1):
        log_in(client, staff.username, "wrong", address)
    assert logged_in(log_in(client, staff.username, PASSWORD, address))
    client.logout()
    for _ in range(settings.CHATBOT_LOGIN_MAX_FAILURES_PER_ACCOUNT - 1):
        log_in(client, staff.username, "wrong", address)
    assert logged_in(log_in(client, staff.username, PASSWORD, address))


def test_an_address_that_tries_many_accounts_is_locked(staff, settings):
    # given: failures spread over many accounts, none of which reaches its own limit
    settings.CHATBOT_LOGIN_MAX_FAILURES_PER_ADDRESS = 6
    client, address = Client(), next(_addresses)
    for n in range(6):
        log_in(client, f"guess-{n}", "wrong", address)
    # when
    response = log_in(client, staff.username, PASSWORD, address)
    # then: refused from there, and the account itself is not locked elsewhere
    assert "Too many failed log-in attempts" in response.content.decode()
    assert logged_in(log_in(Client(), staff.username, PASSWORD, next(_addresses)))


def test_the_import_refuses_a_file_over_the_limit_with_a_clear_error(admin_client, settings):
    # given
    settings.CHATBOT_IMPORT_MAX_BYTES = 100_000
    rows = [{"question": f"Oversized {n}?", "answer": "x" * 500, "language": "en"} for n in range(300)]
    upload = SimpleUploadedFile("big.json", json.dumps(rows).encode(), content_type="application/json")
    # when
    response = admin_client.post(
        "/admin/knowledge/qapair/import/", {"resource": "0", "format": "1", "import_file": upload}
    )
    # then
    assert response.status_code == 200
    assert "imports are limited to 0.1 MB (CHATBOT_IMPORT_MAX_BYTES)" in response.content.decode()
    assert response.context.get("confirm_form") is None
    assert not QAPair.objects.filter(question__startswith="Oversized").exists()


def test_the_import_preview_parses_the_upload_without_reading_it_back(admin_client, monkeypatch):
    from import_export.tmp_storages import MediaStorage

    def refuse(self):  # noqa: ANN001
        raise AssertionError("the preview fetched the upload back from storage")

    monkeypatch.setattr(MediaStorage, "read", refuse)
    rows = [{"question": "Read once?", "answer": "Yes.", "language": "en"}]
    upload = SimpleUploadedFile("one.json", json.dumps(rows).encode(), content_type="application/json")
    response = admin_client.post(
        "/admin/knowledge/qapair/import/", {"resource": "0", "format": "1", "import_file": upload}
    )
    assert response.context["confirm_form"] is not None
