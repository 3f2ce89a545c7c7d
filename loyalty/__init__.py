"""Loyalty: members, purchases and refunds, the points ledger, tiers, coupons, referrals."""
