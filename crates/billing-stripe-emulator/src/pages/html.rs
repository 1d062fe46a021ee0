//! The pages' shared layout and formatting.

use crate::error::Reply;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;background:#f6f8fa;color:#1a1f36;margin:0}\
main{max-width:30rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem}table{width:100%;border-collapse:collapse;margin:1rem 0}\
td{padding:.4rem 0;border-bottom:1px solid #e3e8ee}.num{text-align:right}.total td{font-weight:600}\
label{display:block;margin:.6rem 0;font-size:.9rem;color:#4f566b}input,select{display:block;width:100%;padding:.5rem .6rem;margin-top:.2rem;font:inherit;color:#1a1f36;box-sizing:border-box;border:1px solid #cfd7df;border-radius:6px;background:#fff}\
input:focus,select:focus{outline:2px solid #635bff55;border-color:#635bff}.row{display:flex;gap:1rem}.row label{flex:1}\
button{background:#635bff;color:#fff;border:0;border-radius:6px;padding:.6rem 1.2rem;font:inherit;margin:.5rem 0;cursor:pointer}\
button.secondary{background:#e3e8ee;color:#1a1f36}button.wide{width:100%;margin-top:1rem}details{margin:1rem 0;font-size:.9rem;color:#4f566b}details ul{margin:.4rem 0;padding-left:1.2rem}code{font-size:.85em}.error{color:#c0123c;font-weight:600}.success{color:#0e6245;font-weight:600}.note{color:#4f566b}\
.banner{font-size:.8rem;color:#a8590c;text-transform:uppercase;letter-spacing:.05em}section{border-top:1px solid #e3e8ee;margin-top:1rem}";

/// A complete HTML page.
pub(crate) fn page(status: u16, title: &str, body: &str) -> Reply {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main><p class=banner>Test mode · Stripe emulator</p><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title)
    );
    Reply::raw(status, bytes::Bytes::from(html))
        .with_header("content-type", "text/html; charset=utf-8")
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// `12.34 USD` from minor units.
pub(crate) fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        abs / 100,
        abs % 100,
        escape(&currency.to_ascii_uppercase())
    )
}

/// `2026-12-06` from Unix seconds.
pub(crate) fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string())
}

/// A one-page PDF with `text` (enough for a viewer to open it).
pub(crate) fn pdf(text: &str) -> Vec<u8> {
    let escaped: String = text
        .lines()
        .map(|l| {
            l.replace('\\', "\\\\")
                .replace('(', "\\(")
                .replace(')', "\\)")
        })
        .enumerate()
        .map(|(i, l)| format!("BT /F1 12 Tf 50 {} Td ({l}) Tj ET\n", 780 - 18 * i))
        .collect();
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{escaped}endstream", escaped.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
