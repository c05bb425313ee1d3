//! The reconnect plan (seven small steps, one a day, after a stretch apart), as the apps see
//! it: from this account's point of view.

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::system_time;

/// Where a reconnect plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ReconnectState {
    /// Waiting for the partner to accept.
    Proposed,
    /// Steps come once a day.
    Running,
    /// Paused by a partner: no steps come until resumed.
    Paused,
    /// Every step came for both.
    Finished,
    /// Ended by hand, withdrawn, declined, or the couple ended.
    Ended,
    /// A state this build does not know.
    Other,
}

/// The seven steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ReconnectStepKind {
    Tap,
    OneWord,
    Appreciation,
    SharedMemory,
    DeeperQuestion,
    PlanACall,
    DateIdea,
    /// A kind this build does not know.
    Other,
}

/// What happened to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ReconnectChange {
    /// A partner proposed it.
    Proposed,
    /// The partner accepted it: steps start coming.
    Accepted,
    /// This account's next step came.
    Step,
    /// The partner marked one of their steps done.
    PartnerDone,
    Paused,
    Resumed,
    Ended,
    /// Every step came for both.
    Finished,
    /// A change this build does not know.
    Other,
}

/// One step, as this account sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReconnectStepInfo {
    /// 1-7.
    pub number: u32,
    pub kind: ReconnectStepKind,
    pub title: String,
    /// What to do, in a sentence.
    pub prompt: String,
    /// When it came for this account (none until it has).
    pub came_at: Option<SystemTime>,
    /// This account's local date it came on, "YYYY-MM-DD".
    pub came_on: Option<String>,
    /// Marked done by this account.
    pub i_done: bool,
    /// The partner marked their own step of this number done.
    pub partner_done: bool,
}

/// The couple's reconnect plan.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReconnectInfo {
    /// The server's id (to accept, pause, end or mark a step).
    pub plan_id: String,
    pub state: ReconnectState,
    /// Whether this account proposed it.
    pub started_by_me: bool,
    /// The local time each partner gets a step on their own clock, "HH:MM".
    pub local_time: String,
    pub proposed_at: SystemTime,
    pub accepted_at: Option<SystemTime>,
    pub ended_at: Option<SystemTime>,
    /// This account ended, withdrew or declined it.
    pub ended_by_me: bool,
    /// Paused by this account (only while paused).
    pub paused_by_me: bool,
    /// All seven steps, in order.
    pub steps: Vec<ReconnectStepInfo>,
    /// Steps that have come for this account and for the partner, 0-7.
    pub my_steps_come: u32,
    pub partner_steps_come: u32,
    /// When this account's next step comes (none while proposed, paused, finished or ended).
    pub my_next_step_at: Option<SystemTime>,
}

fn some_time(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    ts.map(|t| system_time(Some(t)))
}

fn some_text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl ReconnectState {
    pub(crate) fn from_wire(v: i32) -> ReconnectState {
        match pb::ReconnectState::try_from(v) {
            Ok(pb::ReconnectState::Proposed) => ReconnectState::Proposed,
            Ok(pb::ReconnectState::Running) => ReconnectState::Running,
            Ok(pb::ReconnectState::Paused) => ReconnectState::Paused,
            Ok(pb::ReconnectState::Finished) => ReconnectState::Finished,
            Ok(pb::ReconnectState::Ended) => ReconnectState::Ended,
            _ => ReconnectState::Other,
        }
    }

    /// Proposed, running or paused: a plan that is still on.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ReconnectState::Proposed | ReconnectState::Running | ReconnectState::Paused
        )
    }
}

impl ReconnectStepKind {
    fn from_wire(v: i32) -> ReconnectStepKind {
        match pb::ReconnectStepKind::try_from(v) {
            Ok(pb::ReconnectStepKind::Tap) => ReconnectStepKind::Tap,
            Ok(pb::ReconnectStepKind::OneWord) => ReconnectStepKind::OneWord,
            Ok(pb::ReconnectStepKind::Appreciation) => ReconnectStepKind::Appreciation,
            Ok(pb::ReconnectStepKind::SharedMemory) => ReconnectStepKind::SharedMemory,
            Ok(pb::ReconnectStepKind::DeeperQuestion) => ReconnectStepKind::DeeperQuestion,
            Ok(pb::ReconnectStepKind::PlanACall) => ReconnectStepKind::PlanACall,
            Ok(pb::ReconnectStepKind::DateIdea) => ReconnectStepKind::DateIdea,
            _ => ReconnectStepKind::Other,
        }
    }
}

impl ReconnectChange {
    pub(crate) fn from_wire(v: i32) -> ReconnectChange {
        match pb::ReconnectChange::try_from(v) {
            Ok(pb::ReconnectChange::Proposed) => ReconnectChange::Proposed,
            Ok(pb::ReconnectChange::Accepted) => ReconnectChange::Accepted,
            Ok(pb::ReconnectChange::Step) => ReconnectChange::Step,
            Ok(pb::ReconnectChange::PartnerDone) => ReconnectChange::PartnerDone,
            Ok(pb::ReconnectChange::Paused) => ReconnectChange::Paused,
            Ok(pb::ReconnectChange::Resumed) => ReconnectChange::Resumed,
            Ok(pb::ReconnectChange::Ended) => ReconnectChange::Ended,
            Ok(pb::ReconnectChange::Finished) => ReconnectChange::Finished,
            _ => ReconnectChange::Other,
        }
    }
}

impl ReconnectStepInfo {
    pub(crate) fn from_wire(s: &pb::ReconnectStep) -> ReconnectStepInfo {
        ReconnectStepInfo {
            number: s.number,
            kind: ReconnectStepKind::from_wire(s.kind),
            title: s.title.clone(),
            prompt: s.prompt.clone(),
            came_at: some_time(s.came_at.as_ref()),
            came_on: some_text(&s.came_on),
            i_done: s.i_done,
            partner_done: s.partner_done,
        }
    }
}

impl ReconnectInfo {
    pub(crate) fn from_wire(p: &pb::ReconnectPlan, my_account: &str) -> ReconnectInfo {
        let state = ReconnectState::from_wire(p.state);
        let mut steps: Vec<ReconnectStepInfo> =
            p.steps.iter().map(ReconnectStepInfo::from_wire).collect();
        steps.sort_by_key(|s| s.number);
        ReconnectInfo {
            plan_id: p.plan_id.clone(),
            state,
            started_by_me: p.started_by_account_id == my_account,
            local_time: p.local_time.clone(),
            proposed_at: system_time(p.proposed_at.as_ref()),
            accepted_at: some_time(p.accepted_at.as_ref()),
            ended_at: some_time(p.ended_at.as_ref()),
            ended_by_me: !p.ended_by_account_id.is_empty() && p.ended_by_account_id == my_account,
            paused_by_me: state == ReconnectState::Paused
                && !p.paused_by_account_id.is_empty()
                && p.paused_by_account_id == my_account,
            steps,
            my_steps_come: p.my_steps_come,
            partner_steps_come: p.partner_steps_come,
            my_next_step_at: some_time(p.my_next_step_at.as_ref()),
        }
    }

    /// The partner's proposal, not yet accepted: this account can accept or decline it.
    pub fn awaits_my_acceptance(&self) -> bool {
        self.state == ReconnectState::Proposed && !self.started_by_me
    }

    /// While the plan runs: this account's latest step that has come and is not marked done.
    pub fn step_waiting(&self) -> Option<ReconnectStepInfo> {
        if self.state != ReconnectState::Running {
            return None;
        }
        self.steps
            .iter()
            .filter(|s| s.came_at.is_some())
            .max_by_key(|s| s.number)
            .filter(|s| !s.i_done)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    }

    fn plan(state: pb::ReconnectState, came: u32, done: &[u32]) -> pb::ReconnectPlan {
        pb::ReconnectPlan {
            plan_id: "plan".into(),
            started_by_account_id: "partner".into(),
            state: state as i32,
            local_time: "19:00".into(),
            proposed_at: ts(100),
            steps: (1..=7)
                .map(|n| pb::ReconnectStep {
                    number: n,
                    kind: n as i32,
                    title: format!("Step {n}"),
                    prompt: format!("Do thing {n}"),
                    came_at: (n <= came).then(|| ts(1000 * i64::from(n))).flatten(),
                    came_on: if n <= came {
                        format!("2026-07-0{n}")
                    } else {
                        String::new()
                    },
                    i_done: done.contains(&n),
                    partner_done: false,
                })
                .rev()
                .collect(),
            my_steps_come: came,
            ..Default::default()
        }
    }

    #[test]
    fn the_waiting_step_is_the_latest_that_came_and_is_not_done() {
        let p = ReconnectInfo::from_wire(&plan(pb::ReconnectState::Running, 3, &[1]), "me");
        assert_eq!(p.steps[0].number, 1, "in order");
        assert_eq!(p.steps[2].kind, ReconnectStepKind::Appreciation);
        assert_eq!(p.steps[0].came_on.as_deref(), Some("2026-07-01"));
        assert_eq!(p.steps[3].came_on, None);
        let s = p.step_waiting().expect("step 3 waits");
        assert_eq!((s.number, s.title.as_str()), (3, "Step 3"));
        // Done: nothing waits, even though step 2 was never marked (it is optional).
        let p = ReconnectInfo::from_wire(&plan(pb::ReconnectState::Running, 3, &[3]), "me");
        assert_eq!(p.step_waiting(), None);
        // Paused or proposed: nothing waits.
        for state in [pb::ReconnectState::Paused, pb::ReconnectState::Proposed] {
            let p = ReconnectInfo::from_wire(&plan(state, 3, &[]), "me");
            assert_eq!(p.step_waiting(), None, "{state:?}");
        }
    }

    #[test]
    fn who_proposed_paused_and_ended_reads_for_this_account() {
        let mut wire = plan(pb::ReconnectState::Proposed, 0, &[]);
        assert!(ReconnectInfo::from_wire(&wire, "me").awaits_my_acceptance());
        assert!(!ReconnectInfo::from_wire(&wire, "partner").awaits_my_acceptance());
        wire.state = pb::ReconnectState::Paused as i32;
        wire.paused_by_account_id = "me".into();
        assert!(ReconnectInfo::from_wire(&wire, "me").paused_by_me);
        wire.state = pb::ReconnectState::Ended as i32;
        wire.ended_by_account_id = "me".into();
        wire.ended_at = ts(5000);
        let p = ReconnectInfo::from_wire(&wire, "me");
        assert!(p.ended_by_me && !p.paused_by_me && !p.state.is_open());
        assert_eq!(ReconnectState::from_wire(99), ReconnectState::Other);
        assert_eq!(ReconnectChange::from_wire(99), ReconnectChange::Other);
    }
}
