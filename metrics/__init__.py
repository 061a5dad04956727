"""Metrics: SQL models in layers (staging -> intermediate -> marts) and the query functions pages call.

Pages hold no SQL: they call functions of this package, which read the marts. Each KPI is
defined once, in one model file.
"""
