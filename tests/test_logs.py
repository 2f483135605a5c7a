"""JSON log lines carry the attempt id as a field; secrets never reach a log line."""

import json
import logging

from agi.logs import JsonFormatter, attempt_extra
from agi.settings import Settings


def test_json_log_line_has_the_attempt_id_field():
    record = logging.LogRecord("agi.originator", logging.INFO, __file__, 1, "attempt %s: originate", ("a-1",), None)
    record.__dict__.update(attempt_extra("a-1"))
    line = json.loads(JsonFormatter().format(record))
    assert line["attempt"] == "a-1" and line["msg"] == "attempt a-1: originate" and line["level"] == "INFO"


def test_settings_never_show_the_secret():
    s = Settings.load(env={"DIALER_AMI_SECRET": "hunter2", "DIALER_DB_URL": "postgresql://u:pw@h/db"})
    assert s.ami_secret.reveal() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.safe_dict())
    assert "pw" not in s.safe_dict()["db_url"]


def test_panoramisk_log_lines_never_show_the_ami_secret(caplog):
    import agi.ami.protocol  # noqa: F401  (installs the filter)

    login = "Action: Login\r\nUsername: dialer\r\nSecret: hunter2\r\n\r\n"
    with caplog.at_level(logging.INFO):
        logging.getLogger("panoramisk.ami_protocol").error("Fail to send %r" % login)  # noqa: UP031 - panoramisk's own words
        logging.getLogger("panoramisk.manager").info('Adding action "login" to awaiting list: %s',
                                                     str({"Action": "Login", "Secret": "hunter2"}))
    assert len(caplog.records) == 2
    assert "hunter2" not in caplog.text and "Secret: ***" in caplog.text
