"""The only place that knows a platform: each module turns updates into Incoming and
Outgoing into platform calls."""
