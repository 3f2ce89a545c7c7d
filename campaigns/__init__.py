"""Campaigns, channels, budgets, expense receipts, revenue records, exchange rates, period
close, and the ROI (input-output ratio) report. Imports only core."""
