"""Web Push subscriptions: one per device and account, listed and removable in settings."""

from piccolo.columns import ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account


class PushSubscription(Table, tablename="push_subscription"):
    id: Serial
    public_id = public_id_column()
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True)
    # The push service's address for this browser; unique, so a device subscribes once.
    endpoint = Varchar(length=1000, unique=True)
    # The browser's public key and auth secret (base64url) that encrypt each payload.
    p256dh = Varchar(length=200)
    auth = Varchar(length=100)
    device_name = Varchar(length=80, default="")
    created_at = created_at_column()
    last_success_at = Timestamptz(null=True, default=None)
