//! When each of our messages is sent: recorded timing scaled by `--speed`,
//! and the number of peer messages that preceded it (for `--wait-*`).

use super::export::LoadedSession;
use crate::types::{Dir, Timestamp};
use std::time::Duration;

/// One of our recorded messages and when to send it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Index into `LoadedSession::messages`.
    pub message: usize,
    /// Delay from the start of the replay (after the handshake).
    pub at: Duration,
    /// Peer messages recorded before this one, in completion order.
    pub after_peer: usize,
}

/// The schedule of `ours` messages. `speed` 0 sends everything at once;
/// otherwise recorded delays (from the session start, or the first message
/// when the start is unreadable) are divided by `speed`.
pub fn plan(session: &LoadedSession, ours: Dir, speed: f64) -> Vec<Step> {
    let base = Some(session.meta.start);
    let mut steps = Vec::new();
    let mut peer_seen = 0usize;
    let mut last = Duration::ZERO;
    for (i, m) in session.messages.iter().enumerate() {
        if m.dir != ours {
            peer_seen += 1;
            continue;
        }
        let at = scaled(base, m.ts, speed).max(last);
        last = at;
        steps.push(Step {
            message: i,
            at,
            after_peer: peer_seen,
        });
    }
    steps
}

/// `(ts - base) / speed`, zero when unknown, negative or speed is 0.
pub fn scaled(base: Option<Timestamp>, ts: Option<Timestamp>, speed: f64) -> Duration {
    let (Some(base), Some(ts)) = (base, ts) else {
        return Duration::ZERO;
    };
    if speed <= 0.0 || !speed.is_finite() {
        return Duration::ZERO;
    }
    let secs = ts.secs_since(base) / speed;
    if secs.is_finite() && secs > 0.0 {
        // A day is more than any test or replay wants to wait per message.
        Duration::from_secs_f64(secs.min(86_400.0))
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::super::export::Recorded;
    use super::*;
    use crate::session::ManifestSession;

    fn msg(dir: Dir, secs: i64) -> Recorded {
        Recorded {
            dir,
            index: 0,
            opcode: 1,
            payload: vec![],
            ts: Some(Timestamp::new(secs, 0)),
            stream: [0, 0],
            compressed: false,
            partial: false,
            close: None,
            frames: vec![],
        }
    }

    fn session() -> LoadedSession {
        LoadedSession {
            meta: ManifestSession {
                start: Timestamp::new(100, 0),
                ..Default::default()
            },
            request: vec![],
            response: vec![],
            messages: vec![
                msg(Dir::C2s, 101),
                msg(Dir::S2c, 102),
                msg(Dir::S2c, 103),
                msg(Dir::C2s, 104),
            ],
            c2s: vec![],
            s2c: vec![],
        }
    }

    #[test]
    fn speed_scales_delays_and_counts_preceding_peer_messages() {
        let p = plan(&session(), Dir::C2s, 2.0);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].message, p[0].at, p[0].after_peer),
            (0, Duration::from_millis(500), 0)
        );
        assert_eq!(
            (p[1].message, p[1].at, p[1].after_peer),
            (3, Duration::from_secs(2), 2)
        );
        let s = plan(&session(), Dir::S2c, 1.0);
        assert_eq!(
            s.iter().map(|x| x.after_peer).collect::<Vec<_>>(),
            vec![1, 1]
        );
    }

    #[test]
    fn speed_zero_is_immediate() {
        assert!(plan(&session(), Dir::C2s, 0.0)
            .iter()
            .all(|s| s.at.is_zero()));
        assert_eq!(
            scaled(None, Some(Timestamp::new(5, 0)), 1.0),
            Duration::ZERO
        );
        assert_eq!(
            scaled(Some(Timestamp::new(5, 0)), Some(Timestamp::new(4, 0)), 1.0),
            Duration::ZERO
        );
    }
}
