//! A sector's timeline as an SVG Gantt chart: a lane of its states, then one lane per
//! worker that ran a phase of it, with one bar per started task (start to finish, or to now
//! while it runs). Self-contained: no fonts, images or scripts from anywhere.

use super::page::esc;
use crate::sched::db::TaskRow;
use crate::sched::task_state::TaskState;
use crate::sched::task_type::TaskType;

/// Where the bars start (the lane labels are left of it) and how wide the time axis is.
const LEFT: f64 = 120.0;
const WIDTH: f64 = 720.0;
const LANE: f64 = 22.0;

/// The fill of a task type's bars.
pub fn color(k: TaskType) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
    ];
    PALETTE[k.index() % PALETTE.len()]
}

fn state_color(state: &str) -> &'static str {
    if state.ends_with("Failed") || state == "FailedUnrecoverable" {
        "#e8a0a0"
    } else if state.contains("Batch") || state == "WaitSeed" {
        "#d8d8d8"
    } else if state == "Proving" {
        "#a8d8a0"
    } else {
        "#b8cce4"
    }
}

/// `+1.5s`, `+12m`, `+3.2h`: an axis label.
fn offset(secs: f64) -> String {
    if secs < 120.0 {
        format!("+{secs:.1}s")
    } else if secs < 7200.0 {
        format!("+{:.0}m", secs / 60.0)
    } else {
        format!("+{:.1}h", secs / 3600.0)
    }
}

/// The chart of sector `sector`: `states` are (state, from, to), `tasks` its tasks, `now`
/// the end of anything still running. `standalone` adds the XML namespace a file needs
/// (inline in HTML it is implied, and the page then names no URL at all).
pub fn sector_svg(
    sector: u64,
    states: &[(String, f64, f64)],
    tasks: &[&TaskRow],
    now: f64,
    standalone: bool,
) -> String {
    let bars: Vec<(&TaskRow, f64, f64)> = tasks
        .iter()
        .filter_map(|t| {
            let start = t.started?;
            let end = t.finished.unwrap_or(now).max(start);
            Some((*t, start, end))
        })
        .collect();
    // Tasks not started yet: a lane of their own, drawn to now, saying why they wait.
    let queued: Vec<&TaskRow> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Queued)
        .copied()
        .collect();
    let mut lanes: Vec<String> = Vec::new();
    for (t, _, _) in &bars {
        let w = t.worker.clone().unwrap_or_default();
        if !lanes.contains(&w) {
            lanes.push(w);
        }
    }
    let t0 = states
        .iter()
        .map(|s| s.1)
        .chain(bars.iter().map(|b| b.1))
        .fold(f64::INFINITY, f64::min);
    let t1 = states
        .iter()
        .map(|s| s.2)
        .chain(bars.iter().map(|b| b.2))
        .chain(queued.iter().map(|_| now))
        .fold(f64::NEG_INFINITY, f64::max);
    let (t0, t1) = if t0.is_finite() {
        (t0, t1.max(t0))
    } else {
        (now, now)
    };
    let span = (t1 - t0).max(1e-3);
    let x = |t: f64| LEFT + (t - t0) / span * WIDTH;
    // A file names its sector; on the page the heading above the chart does.
    let top = if standalone { 18.0 } else { 2.0 };
    let rows = 1 + lanes.len() + usize::from(!queued.is_empty());
    let height = top + LANE * rows as f64 + 16.0;
    let total = LEFT + WIDTH + 10.0;
    let ns = if standalone {
        " xmlns=\"http://www.w3.org/2000/svg\""
    } else {
        ""
    };
    let mut o = format!(
        "<svg{ns} class=\"gantt\" data-sector=\"{sector}\" width=\"{total:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {total:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\
         <title>sector {sector} timeline</title>"
    );
    if standalone {
        o += &format!("<text x=\"4\" y=\"12\" font-weight=\"bold\">sector {sector}</text>");
    }
    // The state lane.
    let y = top;
    o += &format!("<text x=\"4\" y=\"{:.0}\">states</text>", y + 15.0);
    for (state, from, to) in states {
        let (a, b) = (x(*from), x(*to));
        o += &format!(
            "<rect class=\"state\" x=\"{a:.1}\" y=\"{y:.0}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"{}\" stroke=\"#fff\">\
             <title>{}: {:.1}s</title></rect>",
            (b - a).max(1.0),
            LANE - 4.0,
            state_color(state),
            esc(state),
            to - from
        );
    }
    // One lane per worker.
    for (i, lane) in lanes.iter().enumerate() {
        let y = top + LANE * (i + 1) as f64;
        let label: String = lane.chars().take(18).collect();
        o += &format!(
            "<text x=\"4\" y=\"{:.0}\">{}</text>",
            y + 15.0,
            esc(if label.is_empty() { "-" } else { &label })
        );
        for (t, start, end) in bars
            .iter()
            .filter(|b| b.0.worker.as_deref().unwrap_or("") == lane)
        {
            let (a, b) = (x(*start), x(*end));
            let stroke = match t.state {
                TaskState::Failed | TaskState::Lost | TaskState::Abandoned => {
                    " stroke=\"#c00\" stroke-width=\"2\""
                }
                _ => "",
            };
            if *start > t.created {
                // The time it waited in the queue, as a thin line before its bar.
                let w = x(t.created.max(t0));
                o += &format!(
                    "<rect class=\"wait\" x=\"{w:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"2\" fill=\"{}\">\
                     <title>{} task {} queued {:.1}s</title></rect>",
                    y + 8.0,
                    (a - w).max(0.0),
                    color(t.kind),
                    t.kind.short(),
                    t.id,
                    start - t.created
                );
            }
            o += &format!(
                "<rect class=\"bar\" data-task=\"{}\" data-kind=\"{}\" data-state=\"{}\" x=\"{a:.1}\" y=\"{y:.0}\" \
                 width=\"{:.1}\" height=\"{:.0}\" fill=\"{}\"{stroke}><title>{} task {} on {}: {:.1}s, {}</title></rect>",
                t.id,
                t.kind.short(),
                t.state.as_str(),
                (b - a).max(2.0),
                LANE - 4.0,
                color(t.kind),
                t.kind.short(),
                t.id,
                esc(lane),
                end - start,
                t.state.as_str()
            );
            if b - a > 28.0 {
                o += &format!(
                    "<text x=\"{:.1}\" y=\"{:.0}\" fill=\"#fff\">{}</text>",
                    a + 3.0,
                    y + 14.0,
                    t.kind.short()
                );
            }
        }
    }
    if !queued.is_empty() {
        let y = top + LANE * (1 + lanes.len()) as f64;
        o += &format!("<text x=\"4\" y=\"{:.0}\">waiting</text>", y + 15.0);
        for t in &queued {
            let (a, b) = (x(t.created.max(t0)), x(now));
            o += &format!(
                "<rect class=\"queued\" data-task=\"{}\" x=\"{a:.1}\" y=\"{y:.0}\" width=\"{:.1}\" height=\"{:.0}\" \
                 fill=\"{}\" fill-opacity=\"0.35\" stroke=\"{}\" stroke-dasharray=\"3 2\"><title>{} task {} waiting {:.0}s: {}</title></rect>",
                t.id,
                (b - a).max(2.0),
                LANE - 4.0,
                color(t.kind),
                color(t.kind),
                t.kind.short(),
                t.id,
                now - t.created,
                esc(t.wait_reason.as_deref().unwrap_or("queued"))
            );
        }
    }
    let ya = height - 4.0;
    o += &format!(
        "<text x=\"{LEFT:.0}\" y=\"{ya:.0}\">+0s</text><text x=\"{:.0}\" y=\"{ya:.0}\" text-anchor=\"end\">{}</text></svg>",
        LEFT + WIDTH,
        offset(t1 - t0)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(
        id: u64,
        kind: TaskType,
        worker: &str,
        state: TaskState,
        times: (f64, Option<f64>, Option<f64>),
    ) -> TaskRow {
        TaskRow {
            id,
            sector: 7,
            kind,
            state,
            worker: Some(worker.into()),
            fetch_to: None,
            alloc_path: None,
            pid: None,
            created: times.0,
            started: times.1,
            finished: times.2,
            wait_reason: None,
            error: None,
            leader: None,
        }
    }

    #[test]
    fn one_bar_per_started_task_in_its_workers_lane() {
        let evil = "<script>x</script>";
        let tasks = [
            task(
                1,
                TaskType::AddPiece,
                "a",
                TaskState::Done,
                (0.0, Some(1.0), Some(2.0)),
            ),
            task(
                2,
                TaskType::PreCommit1,
                evil,
                TaskState::Failed,
                (2.0, Some(3.0), Some(5.0)),
            ),
            task(
                3,
                TaskType::PreCommit1,
                evil,
                TaskState::Running,
                (6.0, Some(7.0), None),
            ),
            task(
                4,
                TaskType::PreCommit2,
                "a",
                TaskState::Queued,
                (9.0, None, None),
            ),
        ];
        let refs: Vec<&TaskRow> = tasks.iter().collect();
        let states = [
            ("AddPiece".to_string(), 0.0, 2.0),
            ("PreCommit1".to_string(), 2.0, 11.0),
        ];
        let svg = sector_svg(7, &states, &refs, 11.0, false);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3);
        assert_eq!(svg.matches("<rect class=\"state\"").count(), 2);
        // Task 4 waits in its own lane, from its creation (9 s) to now (11 s).
        assert!(
            svg.contains(
                "<rect class=\"queued\" data-task=\"4\" x=\"709.1\" y=\"68\" width=\"130.9\""
            ),
            "{svg}"
        );
        // Each started task's queue time is a line before its bar (task 3: 6 s to 7 s).
        assert!(
            svg.contains("<rect class=\"wait\" x=\"512.7\" y=\"54\" width=\"65.5\""),
            "{svg}"
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!svg.contains("http"), "inline charts name no URL");
        // 11 s over 720 px from x=120: task 2 starts at 3 s, lasts 2 s; task 3 runs to now.
        assert!(svg.contains("data-task=\"2\" data-kind=\"PC1\" data-state=\"failed\" x=\"316.4\" y=\"46\" width=\"130.9\""), "{svg}");
        assert!(svg.contains("data-task=\"3\" data-kind=\"PC1\" data-state=\"running\" x=\"578.2\" y=\"46\" width=\"261.8\""), "{svg}");
        assert!(sector_svg(7, &states, &refs, 11.0, true)
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    }
}
