-- One row per priority: how long a requisition may wait in approval or budget check before it is stalled
-- (DOMAIN.md section 3). A case without a priority is held to the routine SLA.
-- priority: stat, urgent or routine. sla_s: the SLA in seconds (STAT 2 h, urgent 8 h, routine 48 h).
select * from (values ('stat', 2 * 3600), ('urgent', 8 * 3600), ('routine', 48 * 3600)) as slas(priority, sla_s)
