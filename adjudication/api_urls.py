from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("adjudication/runs", api.RunViewSet, basename="adjudication-run")
router.register("adjudication/reports", api.ReportViewSet, basename="adjudication-report")
router.register(
    "adjudication/payment-lines", api.PaymentLineViewSet, basename="adjudication-payment-line"
)
router.register("adjudication/statements", api.StatementViewSet, basename="adjudication-statement")

urlpatterns = router.urls
