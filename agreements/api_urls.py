from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=True)
router.register("agreements", api.AgreementViewSet, basename="agreement")
router.register("programme-years", api.ProgrammeYearViewSet, basename="programme-year")
router.register("agreement-terms", api.TermsViewSet, basename="agreement-terms")
router.register("practices", api.PracticeViewSet, basename="practice")
router.register("physicians", api.PhysicianViewSet, basename="physician")
router.register("roster-imports", api.RosterImportViewSet, basename="roster-import")
router.register("participations", api.ParticipationViewSet, basename="participation")
router.register("fmv-opinions", api.FMVOpinionViewSet, basename="fmv-opinion")
router.register("duties", api.DutyViewSet, basename="duty")
router.register("timesheets", api.TimeSheetViewSet, basename="timesheet")
router.register("committee-meetings", api.CommitteeMeetingViewSet, basename="committee-meeting")
router.register("compliance-flags", api.ComplianceFlagViewSet, basename="compliance-flag")
router.register("documents", api.DocumentViewSet, basename="document")
router.register("milestones", api.MilestoneViewSet, basename="milestone")

urlpatterns = router.urls
