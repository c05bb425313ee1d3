//! The store's part for together time and the next meeting: the couple's latest state, as
//! last heard, for the glance and the apps offline.

use prost::Message;
use rusqlite::Connection;
use tapline_proto::v1 as pb;

use super::Store;
use crate::error::CoreResult;
use crate::model::millis;
use crate::model::system_time;

const KEY: &str = "together";

/// The instant of a wire timestamp, in ms (0 when absent), to order updates.
fn ms(t: Option<&prost_types::Timestamp>) -> i64 {
    millis(system_time(t))
}

/// Keeps `together` in the state: in its slot while proposed or in force, the slot cleared
/// once it has ended. An update about an older together time than the one kept changes
/// nothing (a call's answer can be stored before an older event arrives).
pub(crate) fn apply_together(state: &mut pb::GetTogetherResponse, together: &pb::Together) {
    let newer = state
        .together
        .as_ref()
        .is_none_or(|kept| kept.together_id <= together.together_id);
    if newer {
        state.together = together.ended_at.is_none().then(|| together.clone());
    }
}

/// Keeps `meeting` as the next one unless the one kept was set later.
pub(crate) fn apply_meeting(state: &mut pb::GetTogetherResponse, meeting: &pb::Meeting) {
    let newer = state
        .meeting
        .as_ref()
        .is_none_or(|kept| ms(kept.set_at.as_ref()) <= ms(meeting.set_at.as_ref()));
    if newer {
        state.meeting = Some(meeting.clone());
    }
}

/// Applies one `TogetherUpdated` event to the state.
pub(crate) fn apply_event(state: &mut pb::GetTogetherResponse, e: &pb::TogetherUpdated) {
    match pb::TogetherChange::try_from(e.change) {
        Ok(pb::TogetherChange::Proposed | pb::TogetherChange::Ended) => {
            if let Some(t) = &e.together {
                apply_together(state, t);
            }
        }
        Ok(pb::TogetherChange::Started) => {
            if let Some(t) = &e.together {
                apply_together(state, t);
                // A meeting whose time came turned into this together time: it is not the
                // next meeting any more.
                let came = state
                    .meeting
                    .as_ref()
                    .is_some_and(|m| !t.meeting_id.is_empty() && m.meeting_id == t.meeting_id);
                if came {
                    state.meeting = None;
                }
            }
        }
        Ok(pb::TogetherChange::MeetingSet) => {
            if let Some(m) = &e.meeting {
                apply_meeting(state, m);
            }
        }
        Ok(pb::TogetherChange::MeetingCleared) => state.meeting = None,
        // A change this build does not know: its together time, if it says one, still counts.
        Ok(pb::TogetherChange::Unspecified) | Err(_) => {
            if let Some(t) = &e.together {
                apply_together(state, t);
            }
        }
    }
}

impl Store {
    /// Together time and the next meeting as last heard.
    pub fn together(&self) -> CoreResult<pb::GetTogetherResponse> {
        Self::tx_together(&self.lock())
    }

    /// Replaces them with what the server said.
    pub fn set_together(&self, state: &pb::GetTogetherResponse) -> CoreResult<()> {
        Self::kv_set(&self.lock(), KEY, state.encode_to_vec())
    }

    /// Changes the kept state with `change`, under the store's lock (a call's answer).
    pub fn update_together(
        &self,
        change: impl FnOnce(&mut pb::GetTogetherResponse),
    ) -> CoreResult<()> {
        let conn = self.lock();
        let mut state = Self::tx_together(&conn)?;
        change(&mut state);
        Self::kv_set(&conn, KEY, state.encode_to_vec())
    }

    fn tx_together(conn: &Connection) -> CoreResult<pb::GetTogetherResponse> {
        let bytes: Option<Vec<u8>> = Self::kv_get(conn, KEY)?;
        Ok(bytes
            .map(|b| pb::GetTogetherResponse::decode(b.as_slice()))
            .transpose()?
            .unwrap_or_default())
    }

    /// Inside an event transaction: applies a together update to the kept state.
    pub fn tx_apply_together(conn: &Connection, e: &pb::TogetherUpdated) -> CoreResult<()> {
        let mut state = Self::tx_together(conn)?;
        apply_event(&mut state, e);
        Self::kv_set(conn, KEY, state.encode_to_vec())
    }

    /// Forgets together time and the meeting (the couple ended, or the account left).
    pub fn tx_clear_together(conn: &Connection) -> CoreResult<()> {
        conn.execute("DELETE FROM kv WHERE key = ?1", [KEY])?;
        Ok(())
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

    fn together(id: &str, ended: bool, meeting_id: &str) -> pb::Together {
        pb::Together {
            together_id: id.into(),
            started_by_account_id: "a".into(),
            until: ts(1000),
            minutes: 120,
            ended_at: if ended { ts(500) } else { None },
            meeting_id: meeting_id.into(),
            ..Default::default()
        }
    }

    fn meeting(id: &str, set_at: i64) -> pb::Meeting {
        pb::Meeting {
            meeting_id: id.into(),
            set_at: ts(set_at),
            ..Default::default()
        }
    }

    fn event(
        change: pb::TogetherChange,
        together: Option<pb::Together>,
        meeting: Option<pb::Meeting>,
    ) -> pb::TogetherUpdated {
        pb::TogetherUpdated {
            change: change as i32,
            together,
            meeting,
            ..Default::default()
        }
    }

    #[test]
    fn events_keep_the_latest_together_time_and_meeting() {
        use pb::TogetherChange as C;
        let mut s = pb::GetTogetherResponse::default();
        apply_event(&mut s, &event(C::MeetingSet, None, Some(meeting("m1", 10))));
        apply_event(
            &mut s,
            &event(C::Proposed, Some(together("t1", false, "")), None),
        );
        assert_eq!(s.together.as_ref().unwrap().together_id, "t1");
        assert_eq!(s.meeting.as_ref().unwrap().meeting_id, "m1");
        // It ends: the slot empties.
        apply_event(
            &mut s,
            &event(C::Ended, Some(together("t1", true, "")), None),
        );
        assert!(s.together.is_none());
        // A newer proposal, then a late end of an older one: the newer stays.
        apply_event(
            &mut s,
            &event(C::Proposed, Some(together("t3", false, "")), None),
        );
        apply_event(
            &mut s,
            &event(C::Ended, Some(together("t2", true, "")), None),
        );
        assert_eq!(s.together.as_ref().unwrap().together_id, "t3");
        // An older meeting does not replace a newer one; a clear clears.
        apply_event(&mut s, &event(C::MeetingSet, None, Some(meeting("m2", 20))));
        apply_event(&mut s, &event(C::MeetingSet, None, Some(meeting("m0", 5))));
        assert_eq!(s.meeting.as_ref().unwrap().meeting_id, "m2");
        apply_event(&mut s, &event(C::MeetingCleared, None, None));
        assert!(s.meeting.is_none());
    }

    #[test]
    fn a_meeting_that_came_turns_into_together_time() {
        use pb::TogetherChange as C;
        let mut s = pb::GetTogetherResponse {
            together: None,
            meeting: Some(meeting("m1", 10)),
        };
        // Together time from another meeting leaves this one be.
        apply_event(
            &mut s,
            &event(C::Started, Some(together("t1", false, "m0")), None),
        );
        assert!(s.meeting.is_some());
        apply_event(
            &mut s,
            &event(
                C::Started,
                Some(together("t2", false, "m1")),
                Some(meeting("m1", 10)),
            ),
        );
        assert!(s.meeting.is_none());
        assert_eq!(s.together.as_ref().unwrap().meeting_id, "m1");
    }
}
