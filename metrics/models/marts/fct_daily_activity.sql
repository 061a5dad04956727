-- One row per UTC day, input, stage, facility and supplier: how much happened and how much failed.
-- day: UTC day of the event or span start.
-- input: `transactions` (business events) or `spans` (integration operations).
-- stage, facility_id, supplier_id: the business dimensions (NULL where the record has none).
-- records: events or spans. failures: failed or exception events, error spans.
with business_events as (
    select day, 'transactions' as input, stage, facility_id, supplier_id,
        count(*) as records,
        count(*) filter (where is_failure) as failures
    from stg_transaction_events
    group by all
),

integration_operations as (
    select day, 'spans' as input, stage, facility_id, supplier_id,
        count(*) as records,
        count(*) filter (where is_error) as failures
    from stg_spans
    group by all
)

select * from business_events
union all
select * from integration_operations
