"""The PDF approval trail is dated in the installation's time zone, as the pages are."""

from __future__ import annotations


def test_the_pdf_approval_trail_is_in_the_local_zone_not_utc():
    import datetime as dt

    from adjudication.pdf import _local_stamp

    # 9:30 pm in New York on Dec 1 is 02:30 UTC on Dec 2: the trail says Dec 1.
    moment = dt.datetime(2026, 12, 2, 2, 30, tzinfo=dt.UTC)
    assert _local_stamp(moment) == "Dec 1, 2026 9:30 PM EST"
