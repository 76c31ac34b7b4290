"""Channels (SNS SMS, SNS push, SES email), consent and opt-out checks, the delivery log.

Filled by the appointment-journey issue; the foundation sends only from the smoke journey.
"""
