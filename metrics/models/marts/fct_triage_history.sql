-- One row per triage decision (triage_events), replayed per exception group in order of
-- changed_at (then triage_event_id): the group's triage state after each decision. Last write
-- wins: a decision made on a stale view still applies in its turn, and is flagged `concurrent`.
-- fingerprint, triage_event_id, changed_at, changed_by, action, note, ignore_until: the decision's.
-- sequence: 1, 2, ... per group. is_latest: the group's last decision.
-- status_seen: the status its author saw (status_before). status_set: status_after (NULL for assign, note).
-- status: the group's recorded status after this decision (new until a decision sets one).
-- status_changed_at: when that status was set. assignee: after this decision (NULL: nobody).
-- ignored_until: ignore_until of the ignore decision behind status ignored (NULL: until it escalates).
-- previous_event_id: the group's decision before this one. based_on_event_id: the one its author saw.
-- concurrent: another decision landed between the one its author saw and this one.
with

ordered as (
    select
        *,
        row_number() over by_group as sequence,
        lag(triage_event_id) over by_group as previous_event_id,
        case when status_after is not null then changed_at end as status_set_at
    from triage_events
    window by_group as (partition by fingerprint order by changed_at, triage_event_id)
),

replayed as (
    select
        *,
        coalesce(last_value(status_after ignore nulls) over so_far, 'new') as status,
        last_value(status_set_at ignore nulls) over so_far as status_changed_at,
        nullif(last_value(assignee ignore nulls) over so_far, '') as current_assignee,
        -- a struct, so the status decision's NULL ignore_until (until it escalates) is not skipped
        (last_value(case when status_after is not null then {'until': ignore_until} end ignore nulls) over so_far).until
            as last_ignore_until,
        max(sequence) over (partition by fingerprint) as last_sequence
    from ordered
    window so_far as (partition by fingerprint order by sequence rows between unbounded preceding and current row)
)

select
    fingerprint,
    triage_event_id,
    sequence,
    sequence = last_sequence as is_latest,
    changed_at,
    changed_by,
    action,
    status_before as status_seen,
    status_after as status_set,
    status,
    status_changed_at,
    current_assignee as assignee,
    case when status = 'ignored' then last_ignore_until end as ignored_until,
    note,
    ignore_until,
    previous_event_id,
    based_on_event_id,
    based_on_event_id is distinct from previous_event_id as concurrent
from replayed
