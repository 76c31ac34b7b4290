"""The embedded runtime: CareLoop on a laptop with no AWS account.

Never shipped to Lambda; nothing in `chalicelib/` imports it.
"""
