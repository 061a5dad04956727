-- One row per integration flow, facility and 5-minute bucket of due time: the business SLO events of the flow
-- ("99 % of receipts reach ERP within 15 minutes": slo_target of its SLA, metrics/defaults/flows.toml). An
-- object counts once its SLA has passed (due_at <= data_as_of): good when it arrived within the SLA, bad when
-- it arrived late or is still missing. Burn rates over any window are bad / eligible / (1 - slo_target),
-- summed from these rows by metrics/slo.py.
-- flow, stage: the flow and the stage it serves. facility_id: of the objects (NULL: none).
-- bucket: start of the 5-minute bucket (UTC) holding the objects' due_at. day: its UTC day.
-- eligible: objects whose SLA passed in the bucket. bad: of those, arrived late or missing at data_as_of.
-- slo_target: the flow's target share of good objects. sla_s: its SLA in seconds. data_as_of: fct_sync_drift's.
select
    drift.flow,
    drift.stage,
    drift.facility_id,
    time_bucket(interval 5 minute, drift.due_at) as bucket,
    cast(time_bucket(interval 5 minute, drift.due_at) as date) as day,
    count(*) as eligible,
    count(*) filter (where drift.is_late or drift.is_missing) as bad,
    any_value(flows.slo_target) as slo_target,
    any_value(drift.sla_s) as sla_s,
    any_value(drift.data_as_of) as data_as_of
from fct_sync_drift as drift
join integration_flows as flows on flows.name = drift.flow
where drift.due_at <= drift.data_as_of
group by drift.flow, drift.stage, drift.facility_id, bucket
order by drift.flow, bucket
