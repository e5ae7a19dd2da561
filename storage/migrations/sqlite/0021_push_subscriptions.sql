-- Where to wake each device (issue 20): a browser's Web Push subscription, or a
-- mobile app's APNs / FCM token. One per device.
CREATE TABLE push_subscriptions (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);
