"""Series: automations — readers enter on a trigger and get a run of alerts, step by step.

Owns: series, their steps and the readers in them as editors manage them (editing), readers
entering on a trigger in the transaction of the event (entering), the beat's tick that moves
the readers whose step fell due into the steps' ledgers, set-based (tick), the per-step
figures (stats), and a list's welcome mail as a one-step series (welcome).
May use: delivery (a step's alert is frozen and sent by the engine, like a welcome mail),
alerts (conditions as SQL: segments), tracking (the link map), and the core. It sits below
audience and actions, whose confirmations and signatures make readers enter.

Public (all that other packages import from it):
    editing: SeriesValues, StepValues, add_step, all_series, check_circular, create, get,
        pause, ready_step, replace_step, resume, steps_of, update, update_step
    entering: enter_joined, enter_signed
    stats: entry_counts, step_stats
    tick: hand_out, tick
    welcome: alert_id_of, replace, series_of
"""
