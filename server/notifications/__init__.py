"""Notifications: routing, text, policy, delivery and the notification log (see notifier.py)."""
