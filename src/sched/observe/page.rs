//! The web view: one server-rendered HTML page, no scripts and no external assets (styles
//! inline, charts inline SVG), refreshed by the browser every few seconds. Every string that
//! came from an operator or a host (worker and path names, errors, event text) is escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{gantt, Snapshot};
use crate::sched::clock;
use crate::sched::config::show_size;
use crate::sched::db::TaskRow;

/// `s` made safe as HTML text or a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em;color:#222}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.4em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee;font-size:.9em}\
.alert{background:#fde2e2}.ok{color:#2a7}.bad{color:#c00}.muted{color:#888}nav a{margin-right:1em}\
svg.gantt{display:block;margin:.4em 0}";

/// How many sectors get a chart (the newest ones); the JSON has every sector.
const CHARTS: usize = 100;

fn table(o: &mut String, head: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        o.push_str("<p class=\"muted\">None.</p>");
        return;
    }
    o.push_str("<table><tr>");
    for h in head {
        let _ = write!(o, "<th>{h}</th>");
    }
    o.push_str("</tr>");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{c}</td>");
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
}

/// The whole page; `refresh` seconds between reloads (none for a saved file).
pub fn render(s: &Snapshot, refresh: Option<u32>) -> String {
    let mut o = String::from("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    if let Some(r) = refresh {
        let _ = write!(o, "<meta http-equiv=\"refresh\" content=\"{r}\">");
    }
    let _ = write!(
        o,
        "<title>seal-sched: {}</title><style>{STYLE}</style></head><body>\
         <h1>seal-sched farm <span class=\"muted\">{} · {} · {}</span></h1>\
         <nav><a href=\"#alerts\">alerts</a><a href=\"#pipeline\">pipeline</a><a href=\"#waiting\">waiting</a>\
         <a href=\"#timelines\">timelines</a><a href=\"#batches\">batches</a><a href=\"#storage\">storage</a>\
         <a href=\"#events\">events</a><a href=\"/api/state.json\">json</a><a href=\"/metrics\">metrics</a></nav>",
        esc(&s.repo),
        esc(&s.repo),
        esc(&s.seal_proof),
        clock::rfc3339(s.at)
    );

    let _ = write!(o, "<h2 id=\"alerts\">Alerts ({})</h2>", s.alerts.len());
    if s.alerts.is_empty() {
        o.push_str("<p class=\"ok\">No alerts.</p>");
    } else {
        let rows: Vec<Vec<String>> = s
            .alerts
            .iter()
            .map(|a| {
                vec![
                    a.alert.kind.name().into(),
                    esc(&a.alert.message),
                    clock::rfc3339(a.raised),
                ]
            })
            .collect();
        o.push_str("<div class=\"alert\">");
        table(&mut o, &["kind", "alert", "since"], &rows);
        o.push_str("</div>");
    }

    o.push_str("<h2 id=\"pipeline\">Pipeline</h2>");
    let rows: Vec<Vec<String>> = s
        .sectors_per_state
        .iter()
        .map(|(st, n)| vec![esc(st), n.to_string()])
        .collect();
    table(&mut o, &["state", "sectors"], &rows);
    o.push_str("<h2>Workers</h2>");
    let rows: Vec<Vec<String>> = s
        .workers
        .iter()
        .map(|w| {
            let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (_, k, sector) in &w.running {
                by.entry(k.short()).or_default().push(sector.to_string());
            }
            let running: Vec<String> = by
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.join(" ")))
                .collect();
            vec![
                esc(&w.name),
                esc(if w.host.is_empty() {
                    "this machine"
                } else {
                    &w.host
                }),
                format!("{}/{}", w.cpu_reserved, w.cpus),
                format!("{}/{}", show_size(w.memory_reserved), show_size(w.memory)),
                format!("{:.2}/{}", w.gpu_reserved, w.gpus),
                esc(&running.join("; ")),
            ]
        })
        .collect();
    table(
        &mut o,
        &[
            "worker",
            "host",
            "CPUs reserved",
            "memory reserved",
            "GPUs reserved",
            "running (sectors)",
        ],
        &rows,
    );
    o.push_str("<h2>Hosts</h2>");
    let rows: Vec<Vec<String>> = s
        .hosts
        .iter()
        .map(|h| {
            let state = if h.up {
                "<span class=\"ok\">up</span>".to_string()
            } else {
                format!(
                    "<span class=\"bad\">down</span> {}",
                    esc(h.error.as_deref().unwrap_or(""))
                )
            };
            let usage = h.probe.as_ref().map_or(String::new(), |p| {
                format!(
                    "load {:.2} on {} CPUs, {}/{} memory{}",
                    p.load1,
                    p.cpus,
                    show_size(p.mem_total.saturating_sub(p.mem_available)),
                    show_size(p.mem_total),
                    p.gpus
                        .iter()
                        .map(|g| format!(", {} {:.0}%", esc(&g.name), g.util_percent))
                        .collect::<String>()
                )
            });
            vec![
                esc(if h.host.is_empty() {
                    "this machine"
                } else {
                    &h.host
                }),
                state,
                usage,
            ]
        })
        .collect();
    table(&mut o, &["host", "state", "use"], &rows);

    o.push_str("<h2 id=\"waiting\">Running and waiting tasks</h2>");
    let live: Vec<&TaskRow> = s.tasks.iter().filter(|t| t.state.is_live()).collect();
    let rows: Vec<Vec<String>> = live
        .iter()
        .map(|t| {
            let since = t.started.unwrap_or(t.created);
            vec![
                t.id.to_string(),
                t.sector.to_string(),
                t.kind.short().into(),
                esc(t.worker.as_deref().unwrap_or("-")),
                t.state.as_str().into(),
                format!("{:.0}s", s.at - since),
                esc(t
                    .wait_reason
                    .as_deref()
                    .or(t.error.as_deref())
                    .unwrap_or("")),
            ]
        })
        .collect();
    table(
        &mut o,
        &[
            "task",
            "sector",
            "type",
            "worker",
            "state",
            "time",
            "waiting for",
        ],
        &rows,
    );

    o.push_str("<h2 id=\"timelines\">Sector timelines</h2><p class=\"muted\">One bar per phase task, by worker; the top lane is the sector's states. Hover for times.</p>");
    let legend: Vec<String> = crate::sched::task_type::TaskType::SEALING
        .iter()
        .map(|k| {
            format!(
                "<span style=\"background:{};color:#fff;padding:0 4px\">{}</span>",
                gantt::color(*k),
                k.short()
            )
        })
        .collect();
    let _ = write!(o, "<p>{}</p>", legend.join(" "));
    let rows: Vec<_> = s.sector_rows().collect();
    let skip = rows.len().saturating_sub(CHARTS);
    for sr in rows.into_iter().skip(skip) {
        let tasks: Vec<&TaskRow> = s.tasks.iter().filter(|t| t.sector == sr.number).collect();
        let _ = write!(
            o,
            "<div id=\"sector-{}\"><b>Sector {}</b>: {}{}{}",
            sr.number,
            sr.number,
            sr.state,
            if sr.deal { " (deals)" } else { " (CC)" },
            sr.last_error
                .as_deref()
                .map(|e| format!(" <span class=\"bad\">{}</span>", esc(e)))
                .unwrap_or_default()
        );
        o += &gantt::sector_svg(sr.number, &s.timeline(sr.number), &tasks, s.at, false);
        o.push_str("</div>");
    }
    for (n, r) in &s.sectors {
        if let Err(bad) = r {
            let _ = write!(
                o,
                "<p class=\"bad\">Sector {n}: set aside: {}</p>",
                esc(&bad.to_string())
            );
        }
    }

    o.push_str("<h2 id=\"batches\">Batches</h2>");
    let rows: Vec<Vec<String>> = s
        .batches
        .iter()
        .map(|b| {
            vec![
                esc(&b.id),
                b.kind.name().into(),
                b.state.name().into(),
                clock::rfc3339(b.created),
                b.landed_epoch.map(|e| e.to_string()).unwrap_or_default(),
                esc(b.message.as_deref().or(b.error.as_deref()).unwrap_or("")),
                b.sectors
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    table(
        &mut o,
        &[
            "batch",
            "kind",
            "state",
            "created",
            "landed epoch",
            "message",
            "sectors",
        ],
        &rows,
    );

    o.push_str("<h2 id=\"storage\">Storage paths</h2>");
    let rows: Vec<Vec<String>> = s
        .paths
        .iter()
        .map(|p| {
            vec![
                esc(&p.root),
                match &p.available {
                    Ok(a) => format!("{} available", show_size(*a)),
                    Err(e) => format!("<span class=\"bad\">{}</span>", esc(e)),
                },
                esc(&p.workers.join(", ")),
            ]
        })
        .collect();
    table(&mut o, &["path", "space", "workers"], &rows);

    o.push_str("<h2 id=\"events\">Events (newest first)</h2>");
    let rows: Vec<Vec<String>> = s
        .events
        .iter()
        .map(|e| {
            vec![
                clock::rfc3339(e.at),
                e.sector.map(|n| n.to_string()).unwrap_or_default(),
                esc(&e.kind),
                esc(&e.detail),
            ]
        })
        .collect();
    table(&mut o, &["time", "sector", "kind", "event"], &rows);
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x&y")</script> 'q'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39;"
        );
        assert_eq!(esc("plain /mnt/seal-1"), "plain /mnt/seal-1");
    }
}
