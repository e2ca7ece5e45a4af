//! `hyflow report`: the HTML report of the manufacturing fixture's replay holds the summary
//! that the outputs give, a plot per alerting sensor, its incidents and nothing fetched at
//! view time; rendered
//! by headless Chromium (Debian's `chromium`, installed by scripts/test.sh) it is not blank.

use crate::common;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn hyflow(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("hyflow");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// The cell after the summary row `key`.
fn summary(html: &str, key: &str) -> u64 {
    let at = html
        .find(&format!("<th>{key}</th>"))
        .unwrap_or_else(|| panic!("no summary row {key}"));
    let cell = &html[at..];
    let v = cell.split("<td class=\"n\">").nth(1).expect("cell");
    v[..v.find('<').expect("end")].parse().expect("a count")
}

/// A screenshot of `page` by headless Chromium: the PNG's size in bytes.
fn screenshot(page: &str, png: &Path) -> u64 {
    let chromium = std::env::var("HYFLOW_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let o = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg("--window-size=1000,1400")
        .arg(format!(
            "--user-data-dir={}",
            png.with_extension("profile").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(page)
        .output()
        .unwrap_or_else(|e| panic!("{chromium} (scripts/test.sh installs it): {e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::metadata(png).expect("screenshot").len()
}

#[test]
fn the_report_of_a_replay_shows_its_counts_and_plots_its_alerting_sensors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    common::replay("pipelines/manufacturing.toml", 2, None, &out).expect("replay");
    let file = tmp.path().join("report.html");
    let (code, stdout, err) = hyflow(&[
        "report",
        &out.display().to_string(),
        "--out-file",
        &file.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("wrote "), "{stdout}");
    let html = std::fs::read_to_string(&file).expect("report");
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing to fetch (the SVG namespace is a name, not a request).
    for fetch in ["src=", "href=", "<script", "url("] {
        assert!(!html.contains(fetch), "{fetch} in the report");
    }
    // The summary is what the outputs hold.
    let windows = common::dump(&out.join("windows")).lines().count() as u64 - 1;
    assert_eq!(summary(&html, "windows"), windows);
    let alerts = common::dump(&out.join("alerts"));
    let mut lines = alerts.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).expect(n);
    let (s, e) = (col("sensor_id"), col("episode"));
    let episodes: BTreeSet<(String, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[s].to_string(), f[e].to_string())
        })
        .collect();
    assert!(!episodes.is_empty());
    assert_eq!(summary(&html, "alert episodes"), episodes.len() as u64);
    let rejects = common::dump(&out.join("rejects")).lines().count() as u64 - 1;
    assert_eq!(summary(&html, "rejected readings"), rejects);
    let late = common::dump(&out.join("late")).lines().count() as u64 - 1;
    assert_eq!(summary(&html, "late readings"), late);
    // Every alerting sensor is plotted (12 at most; the fixture has fewer): three plots each,
    // its episodes shaded.
    let alerting: BTreeSet<&String> = episodes.iter().map(|(s, _)| s).collect();
    assert!(alerting.len() <= 12);
    for sensor in &alerting {
        let at = html
            .find(&format!("id=\"sensor-{sensor}\""))
            .unwrap_or_else(|| panic!("no plot of {sensor}"));
        let section = &html[at..html[at..].find("</section>").expect("section end") + at];
        // The signal, the fused/learned/rule scores, and each detector's score.
        assert_eq!(section.matches("<svg").count(), 3, "{sensor}");
        for d in ["machine", "level", "bearing", "stuck"] {
            assert!(
                section.contains(&format!("<title>{d}</title>")),
                "{sensor}: no {d} line"
            );
        }
        assert!(
            section.contains("class=\"episode\""),
            "{sensor}: no episode shaded"
        );
        assert!(
            section.contains("class=\"series\" d=\"M"),
            "{sensor}: no line"
        );
    }
    // Incidents: the summary counts each incident of the output once, the table has a row
    // for each, and the section of an incident's first sensor names it.
    let incidents = common::dump(&out.join("incidents"));
    let ids: BTreeSet<String> = incidents
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).expect("incident_id").to_string())
        .collect();
    assert!(!ids.is_empty(), "the fixture's replay has incidents");
    assert_eq!(summary(&html, "incidents"), ids.len() as u64);
    let table = &html[html.find("id=\"incidents\"").expect("incidents table")..];
    for id in &ids {
        assert!(
            table.contains(&format!("<tr><td>{id}</td>")),
            "no row of {id}"
        );
        let first = id.split('#').next().expect("sensor");
        if let Some(at) = html.find(&format!("id=\"sensor-{first}\"")) {
            let section = &html[at..html[at..].find("</section>").expect("end") + at];
            assert!(
                section.contains(id.as_str()),
                "{first}'s section does not name {id}"
            );
        }
    }
    // --sensors picks them; --from/--to narrow the windows.
    let (code, _, err) = hyflow(&[
        "report",
        &out.display().to_string(),
        "--sensors",
        "m01-*",
        "--from",
        "2024-03-04T00:10:00Z",
        "--to",
        "2024-03-04T00:20:00Z",
        "--out-file",
        &file.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let part = std::fs::read_to_string(&file).expect("report");
    let plotted: Vec<&str> = part
        .matches("<section class=\"sensor\" id=\"sensor-")
        .collect();
    assert_eq!(plotted.len(), 4, "m01's four sensors");
    assert!(!part.contains("id=\"sensor-m00-"));
    assert!(summary(&part, "windows") < windows);
    // A time range with no window is an error, not an empty report.
    let (code, _, err) = hyflow(&[
        "report",
        &out.display().to_string(),
        "--from",
        "2030-01-01",
        "--out-file",
        &file.display().to_string(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no window in the selected time range"),
        "{err}"
    );
    // Rendered, it is not blank: its screenshot is far larger than a blank page's.
    std::fs::write(&file, &html).expect("report");
    let blank = tmp.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").expect("blank");
    let report_png = screenshot(
        &format!("file://{}", file.display()),
        &tmp.path().join("r.png"),
    );
    let blank_png = screenshot(
        &format!("file://{}", blank.display()),
        &tmp.path().join("b.png"),
    );
    assert!(
        report_png > 10 * blank_png,
        "the rendered report looks blank: {report_png} bytes against {blank_png} for a blank page"
    );
}
