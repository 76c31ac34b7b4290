"""What messages cost, for estimates (the analytics' message cost, the scenario simulator).

Email and push are flat (SES outbound, SNS mobile push). SMS is billed per message part (a
segment) and by destination country; these are approximate list prices with carrier fees, for
planning only: a real budget reads the AWS End User Messaging pricing page for each country.
"""

from __future__ import annotations

MESSAGE_PRICES = {
    "email_per_message": 0.10 / 1000,
    "push_per_message": 0.50 / 1_000_000,
}
SMS_PRICE_PER_SEGMENT = {  # destination country (ISO 3166-1) -> USD per segment
    "CN": 0.0197,
    "US": 0.0088,  # $0.00581 plus a typical carrier fee
}
# A country not listed: priced as the dearest listed, so an estimate errs high.
SMS_PRICE_OTHERWISE = max(SMS_PRICE_PER_SEGMENT.values())


def estimated_cost_usd(country: str, sms_segments: float, emails: float, pushes: float) -> float:
    """Messages' cost in US dollars, texts priced as sent to the hospital's own country."""
    sms = SMS_PRICE_PER_SEGMENT.get(country, SMS_PRICE_OTHERWISE)
    return round(
        sms_segments * sms
        + emails * MESSAGE_PRICES["email_per_message"]
        + pushes * MESSAGE_PRICES["push_per_message"],
        6,
    )
