"""The PDF task given another organization's report id finds nothing and renders nothing."""

import pytest

from adjudication.models import AdjudicationReport
from adjudication.tasks import report_render_task


def test_rendering_another_organizations_report_is_refused(world, recorded):
    with world.scope():
        before = AdjudicationReport.objects.get(pk=recorded.report.pk)
        pdf_before = bytes(before.pdf or b"")
    with pytest.raises(AdjudicationReport.DoesNotExist):
        report_render_task.delay(organization_id=world.other_org.pk, report_id=recorded.report.pk)
    with world.scope():
        after = AdjudicationReport.objects.get(pk=recorded.report.pk)
    assert bytes(after.pdf or b"") == pdf_before
