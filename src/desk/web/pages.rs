//! The desk's pages, rendered on the server (maud escapes every value), in
//! Simplified Chinese or English (`/lang/en`, `/lang/zh`). The little
//! JavaScript there is (`desk.js`, served from here, no CDN) sends the
//! action forms to the JSON API with the CSRF token.

use super::api::{self, ListQuery};
use super::{LANG_COOKIE, WebError, cookie};
use crate::core::flag::Flag;
use crate::desk::Desk;
use crate::desk::i18n::{self, Lang};
use crate::desk::store::{FlagRow, Order, Role, Session, StatusFilter, now_ms};
use crate::types::Domain;
use crate::types::category::Category;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use std::sync::Arc;

/// Businesses per page of the open-flags list (a phone's screenful or two).
const PAGE: i64 = 50;

const CSS: &str = include_str!("assets/desk.css");
const JS: &str = include_str!("assets/desk.js");

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

fn lang(headers: &HeaderMap) -> Lang {
    Lang::from_cookie(cookie(headers, LANG_COOKIE))
}

fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
}

/// The page's session, or the answer to give instead (the login page).
async fn page_session(desk: &Desk, headers: &HeaderMap) -> Result<Session, Response> {
    match super::session(desk, headers).await {
        Ok(s) => Ok(s),
        Err(WebError::Unauthorized) => Err(to_login()),
        Err(e) => Err(e.into_response()),
    }
}

fn page(lang: Lang, title: &str, session: Option<&Session>, body: Markup) -> Html<String> {
    let t = |zh, en| lang.t(zh, en);
    Html(
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    @if let Some(s) = session {
                        meta name="csrf-token" content=(s.csrf_token);
                    }
                    title { (title) " · " (t("风险预警工作台", "Risk desk")) }
                    link rel="stylesheet" href="/assets/desk.css";
                    script src="/assets/desk.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/flags" { (t("市场监管 · 风险预警工作台", "Market supervision · risk desk")) }
                        nav {
                            @if let Some(s) = session {
                                a href="/flags" { (t("待办", "Open")) }
                                a href="/flags?status=all" { (t("全部", "All")) }
                                @if s.user.role != Role::Inspector {
                                    a href="/overview" { (t("总览", "Overview")) }
                                }
                            }
                            @match lang {
                                Lang::Zh => a href="/lang/en" { "English" },
                                Lang::En => a href="/lang/zh" { "中文" },
                            }
                            @if let Some(s) = session {
                                span.user { (s.user.name) }
                                form.logout method="post" action="/logout" {
                                    input type="hidden" name="csrf_token" value=(s.csrf_token);
                                    button type="submit" { (t("退出", "Log out")) }
                                }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

pub fn login_html(headers: &HeaderMap, error: Option<&str>) -> Html<String> {
    let lang = lang(headers);
    let t = |zh, en| lang.t(zh, en);
    page(
        lang,
        t("登录", "Log in"),
        None,
        html! {
            form.login method="post" action="/login" {
                h1 { (t("登录", "Log in")) }
                @if let Some(e) = error {
                    p.error role="alert" {
                        (match e {
                            "wrong user name or password" => t("用户名或密码错误", e).to_owned(),
                            other => match other.strip_prefix("too many failed logins; try again in ") {
                                Some(rest) if lang == Lang::Zh => format!(
                                    "登录失败次数过多，请 {} 秒后再试",
                                    rest.trim_end_matches(" seconds")
                                ),
                                _ => other.to_owned(),
                            },
                        })
                    }
                }
                label { (t("用户名", "User name")) input name="username" autocomplete="username" required maxlength="64"; }
                label { (t("密码", "Password")) input name="password" type="password" autocomplete="current-password" required maxlength="1024"; }
                button type="submit" { (t("登录", "Log in")) }
            }
        },
    )
}

pub async fn login_page(headers: HeaderMap) -> Response {
    login_html(&headers, None).into_response()
}

pub async fn home() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/flags")]).into_response()
}

pub async fn set_lang(Path(to): Path<String>, headers: HeaderMap) -> Response {
    let code = if to == "en" { "en" } else { "zh" };
    // Back to the page the link was on, when it is one of ours.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let rest = r.split_once("://")?.1.strip_prefix(host)?;
            // A path of ours; `//host` would leave the desk.
            (rest.starts_with('/') && !rest.starts_with("//")).then(|| rest.to_owned())
        })
        .unwrap_or_else(|| "/flags".to_owned());
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, back),
            (
                header::SET_COOKIE,
                format!("{LANG_COOKIE}={code}; Path=/; SameSite=Strict; Max-Age=31536000"),
            ),
        ],
    )
        .into_response()
}

fn severity_badge(lang: Lang, s: &str) -> Markup {
    html! { span class={"sev sev-" (s)} { (i18n::severity(lang, s)) } }
}

fn parse_flag(row: &FlagRow) -> Option<Flag> {
    serde_json::from_str(&row.body).ok()
}

pub async fn flags(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match page_session(&desk, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let result = async {
        let Query(q) = q.map_err(|e| WebError::BadRequest(e.body_text()))?;
        let (filter, limit, offset) = api::list_params(&q, PAGE)?;
        let rows = if filter == StatusFilter::Open {
            desk.store
                .open_by_business(&s.user.scope(), limit, offset)
                .await?
        } else {
            desk.store
                .flags(&s.user.scope(), filter, Order::Newest, limit, offset)
                .await?
                .into_iter()
                .map(|f| (f, 1))
                .collect()
        };
        api::audit_list(&desk, &s, rows.len()).await?;
        Ok::<_, WebError>((filter, rows, limit, offset))
    }
    .await;
    let (filter, rows, limit, offset) = match result {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let lang = lang(&headers);
    let t = |zh, en| lang.t(zh, en);
    let now = now_ms();
    let all = filter == StatusFilter::All;
    let status_q = if all { "all" } else { "open" };
    let regions = match s.user.role {
        Role::Inspector => s.user.regions.join("、"),
        _ => t("全部区域", "all regions").to_owned(),
    };
    page(
        lang,
        t("预警", "Flags"),
        Some(&s),
        html! {
            h1 {
                (if all { t("全部预警", "All flags") } else { t("待处理预警", "Open flags") })
                small { " · " (regions) }
            }
            @if rows.is_empty() {
                p.empty { (t("没有预警。", "No flags.")) }
            }
            ul.flags {
                @for (r, same) in &rows {
                    li.flag data-flag-id=(r.flag_id) data-region=(r.region) {
                        a href={"/flags/" (r.flag_id)} {
                            div.line1 {
                                (severity_badge(lang, &r.severity))
                                span.name { (if r.business_name.is_empty() { &r.business_id } else { &r.business_name }) }
                                span.score title=(t("风险分", "risk score")) { (format!("{:.2}", r.risk_score)) }
                            }
                            div.line2 {
                                span.region { (r.region) }
                                span.domain { (i18n::domain(lang, &r.domain)) }
                                span.age { (i18n::age(lang, now - r.received_ms)) }
                                span class={"status st-" (r.status)} { (i18n::status(lang, &r.status)) }
                                @if let Some(a) = &r.assignee { span.assignee { (a) } }
                                @if *same > 1 {
                                    span.more { (match lang { Lang::Zh => format!("该商户共 {same} 条预警"), Lang::En => format!("{same} flags for this business") }) }
                                }
                            }
                            div.reason { (i18n::first_reason(lang, &r.reason)) }
                        }
                    }
                }
            }
            nav.pages {
                @if offset > 0 {
                    a href={"/flags?status=" (status_q) "&offset=" ((offset - limit).max(0))} { (t("上一页", "Previous")) }
                }
                @if rows.len() as i64 == limit {
                    a href={"/flags?status=" (status_q) "&offset=" (offset + limit)} { (t("下一页", "Next")) }
                }
            }
        },
    )
    .into_response()
}

fn local_time(desk: &Desk, ms: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(desk.cfg.utc_offset_hours * 3600)
        .or_else(|| chrono::FixedOffset::east_opt(0));
    match (chrono::DateTime::from_timestamp_millis(ms), offset) {
        (Some(t), Some(o)) => t.with_timezone(&o).format("%Y-%m-%d %H:%M").to_string(),
        _ => String::new(),
    }
}

fn action_name(lang: Lang, a: &str) -> String {
    let (zh, en) = match a {
        "assign" => ("认领", "assigned"),
        "outcome" => ("记录检查结果", "recorded the outcome"),
        "dismiss" => ("驳回", "dismissed"),
        "closed_by_outcome" => ("随商户检查结果关闭", "closed by the business's inspection"),
        other => (other, other),
    };
    lang.t(zh, en).to_owned()
}

pub async fn flag(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(flag_id): Path<String>,
) -> Response {
    let s = match page_session(&desk, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let result = async {
        let (r, history, outcome) = api::view_flag(&desk, &s, &flag_id).await?;
        Ok::<_, WebError>((r, history, outcome))
    }
    .await;
    let (r, history, outcome) = match result {
        Ok(x) => x,
        Err(WebError::NotFound) => return not_found(&headers, &s),
        Err(e) => return e.into_response(),
    };
    let lang = lang(&headers);
    let t = |zh, en| lang.t(zh, en);
    let f = parse_flag(&r);
    let domain = Domain::parse(&r.domain).unwrap_or(Domain::Food);
    let open = matches!(r.status.as_str(), "open" | "assigned");
    let name = if r.business_name.is_empty() {
        r.business_id.clone()
    } else {
        r.business_name.clone()
    };
    let contributions: std::collections::BTreeMap<&str, f64> = f
        .as_ref()
        .map(|f| {
            f.reasons
                .iter()
                .map(|x| (x.feature.as_str(), x.contribution))
                .collect()
        })
        .unwrap_or_default();
    page(
        lang,
        &name,
        Some(&s),
        html! {
            article.detail data-flag-id=(r.flag_id) data-status=(r.status) {
                h1 { (severity_badge(lang, &r.severity)) " " span.name { (name) } }
                dl.facts {
                    dt { (t("状态", "Status")) } dd.status { (i18n::status(lang, &r.status)) @if let Some(a) = &r.assignee { " · " (a) } }
                    dt { (t("风险分", "Risk score")) } dd { (format!("{:.2}", r.risk_score)) }
                    dt { (t("区域", "Region")) } dd { (r.region) }
                    dt { (t("领域", "Domain")) } dd { (i18n::domain(lang, &r.domain)) }
                    dt { (t("商户编号", "Business id")) } dd { (r.business_id) }
                    dt { (t("触发", "Trigger")) } dd { (i18n::trigger(lang, &r.trigger)) }
                    dt { (t("预警时间", "Flagged")) } dd { (local_time(&desk, r.received_ms)) " (" (i18n::age(lang, now_ms() - r.received_ms)) ")" }
                }
                @if open {
                    section.actions {
                        h2 { (t("处理", "Act")) }
                        p.form-error role="alert" hidden {}
                        @if r.assignee.as_deref() != Some(s.user.name.as_str()) {
                            form #assign data-api={"/api/flags/" (r.flag_id) "/assign"} {
                                button type="submit" { (t("认领给我", "Assign to me")) }
                            }
                        }
                        form #outcome data-api={"/api/flags/" (r.flag_id) "/outcome"} data-kind="outcome" {
                            h3 { (t("记录检查结果", "Record the inspection")) }
                            label { (t("检查时间", "Inspected at")) input type="datetime-local" name="inspected_at" required; }
                            fieldset {
                                legend { (t("结果", "Result")) }
                                label { input type="radio" name="outcome" value="1" required; (t("发现违规", "Violations found")) }
                                label { input type="radio" name="outcome" value="0"; (t("未发现违规", "None found")) }
                            }
                            fieldset {
                                legend { (t("确认的问题", "Confirmed on site")) }
                                @for c in Category::of(domain) {
                                    label { input type="checkbox" name="categories" value=(c.as_str()); (i18n::category(lang, *c)) }
                                }
                            }
                            label { (t("备注", "Note")) textarea name="note" maxlength="2000" rows="3" {} }
                            button type="submit" { (t("提交检查结果", "Record")) }
                        }
                        form #dismiss data-api={"/api/flags/" (r.flag_id) "/dismiss"} data-kind="dismiss" {
                            h3 { (t("驳回预警", "Dismiss")) }
                            select name="reason" required {
                                option value="" { (t("选择原因", "Choose a reason")) }
                                option value="competitor attack" { (t("竞争对手恶意差评", "Competitor attack")) }
                                option value="already closed" { (t("商户已停业", "Business already closed")) }
                                option value="duplicate" { (t("重复预警", "Duplicate flag")) }
                                option value="not our jurisdiction" { (t("不属本局管辖", "Not our jurisdiction")) }
                            }
                            button type="submit" { (t("驳回", "Dismiss")) }
                        }
                    }
                }
                @if let Some(o) = &outcome {
                    section.outcome {
                        h2 { (t("检查结果", "Outcome")) }
                        p.result { (if o.violation { t("发现违规", "Violations found") } else { t("未发现违规", "None found") }) }
                        @if !o.categories.is_empty() {
                            p { @for c in &o.categories { span.tag { (i18n::category_name(lang, c)) } } }
                        }
                        @if !o.note.is_empty() { p.note { (o.note) } }
                        p.meta { (o.inspected_at) " · " (o.recorded_by) " · " (o.outcome_id)
                            " · " (if o.published_ms.is_some() { t("已同步", "sent") } else { t("待同步", "waiting to be sent") }) }
                    }
                }
                @if let Some(f) = &f {
                    section.reasons {
                        h2 { (t("预警原因", "Why")) }
                        ul { @for x in &f.reasons { li { (i18n::reason(lang, &x.feature, x.value, &x.text)) } } }
                    }
                    section.evidence {
                        h2 { (t("评价证据（已脱敏）", "Evidence (redacted)")) }
                        @if f.evidence.is_empty() { p.empty { (t("无", "None")) } }
                        ul {
                            @for e in &f.evidence {
                                li {
                                    p.snippet { (e.snippet) }
                                    p.meta {
                                        (e.created_at)
                                        @for sig in &e.signals { " " span.tag { (i18n::category_name(lang, sig)) } }
                                        @if e.photos > 0 { " · " (t("附照片 ", "photos ")) (e.photos) }
                                    }
                                }
                            }
                        }
                    }
                    section.trail {
                        h2 { (t("评分依据", "How it was scored")) }
                        p.meta {
                            (t("模型 ", "Model ")) (f.model.name) " " (f.model.version) " · sha256 " (f.model.sha256.get(..12).unwrap_or(&f.model.sha256))
                            " · " (t("参考评价 ", "reviews considered ")) (f.reviews_considered)
                            " · " (t("触发评价时间 ", "event time ")) (f.event_time)
                        }
                        table {
                            thead { tr { th { (t("特征", "Feature")) } th { (t("取值", "Value")) } th { (t("贡献", "Contribution")) } } }
                            tbody {
                                @for (k, v) in &f.features {
                                    tr {
                                        td { (i18n::reason(lang, k, *v, k)) }
                                        td { (format!("{v:.3}")) }
                                        td { @if let Some(c) = contributions.get(k.as_str()) { (format!("{c:+.2}")) } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !history.is_empty() {
                    section.history {
                        h2 { (t("处理记录", "History")) }
                        ul { @for h in &history {
                            li { (local_time(&desk, h.at_ms)) " · " (h.actor) " · " (action_name(lang, &h.action))
                                @if !h.detail.is_empty() && h.action == "dismiss" { ": " (h.detail) } }
                        } }
                    }
                }
            }
        },
    )
    .into_response()
}

fn not_found(headers: &HeaderMap, s: &Session) -> Response {
    let lang = lang(headers);
    (
        StatusCode::NOT_FOUND,
        page(
            lang,
            lang.t("未找到", "Not found"),
            Some(s),
            html! { p.error { (lang.t("没有这条预警，或不在您负责的区域。", "No such flag, or not in your regions.")) } },
        ),
    )
        .into_response()
}

pub async fn overview(State(desk): State<Arc<Desk>>, headers: HeaderMap) -> Response {
    let s = match page_session(&desk, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let v = match api::overview_json(&desk, &s).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = desk
        .store
        .audit(&s.user.name, "view_overview", None, "", now_ms())
        .await
    {
        return WebError::from(e).into_response();
    }
    let lang = lang(&headers);
    let t = |zh, en| lang.t(zh, en);
    let hours = |x: &serde_json::Value| i18n::age(lang, x.as_i64().unwrap_or(0) * 1000);
    let pct = |x: &serde_json::Value| {
        x.as_f64()
            .map(|p| format!("{:.0}%", p * 100.0))
            .unwrap_or("—".into())
    };
    let y = &v["yield_90d"];
    page(
        lang,
        t("总览", "Overview"),
        Some(&s),
        html! {
            h1 { (t("总览", "Overview")) }
            section.yield {
                h2 { (t("近 90 天检查命中率", "Yield, last 90 days")) }
                table {
                    thead { tr { th {} th { (t("检查次数", "Inspections")) } th { (t("发现违规", "Violations")) } th { (t("命中率", "Yield")) } } }
                    tbody {
                        tr.flagged { td { (t("预警驱动", "Flag-driven")) } td { (y["flagged"]["inspections"]) } td { (y["flagged"]["violations"]) } td { (pct(&y["flagged"]["share"])) } }
                        tr.routine { td { (t("常规抽查", "Routine")) } td { (y["routine"]["inspections"]) } td { (y["routine"]["violations"]) } td { (pct(&y["routine"]["share"])) } }
                    }
                }
            }
            section.regions {
                h2 { (t("各区域待办与检查能力", "Regions: open work against weekly capacity")) }
                table {
                    thead { tr { th { (t("区域", "Region")) } th { (t("待办", "Open")) } th { (t("每周可检查", "Inspections a week")) } th { (t("约需周数", "Weeks to clear")) } th { (t("最久", "Oldest")) } } }
                    tbody {
                        @for r in v["regions"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                            tr data-region=(r["region"].as_str().unwrap_or("")) {
                                td { (r["region"].as_str().unwrap_or("")) }
                                td { (r["open"]) }
                                td { @if let Some(w) = r["inspections_per_week"].as_i64() { (w) } @else { "—" } }
                                td { @if let Some(w) = r["weeks_to_clear"].as_f64() { (format!("{w:.1}")) } @else { "—" } }
                                td { @if r["open"].as_i64().unwrap_or(0) > 0 { (hours(&r["oldest_age_seconds"])) } }
                            }
                        }
                    }
                }
            }
            section.backlog {
                h2 { (t("待办积压", "Backlog")) }
                @if let Some(age) = v["oldest_open_age_seconds"].as_i64() {
                    p { (t("最久未处理：", "Oldest open flag: ")) (i18n::age(lang, age * 1000)) }
                }
                table {
                    thead { tr { th { (t("区域", "Region")) } th { (t("检查员", "Inspector")) } th { (t("待处理", "Open")) } th { (t("已认领", "Assigned")) } th { (t("最久", "Oldest")) } } }
                    tbody {
                        @for b in v["backlog"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                            tr {
                                td { (b["region"].as_str().unwrap_or("")) }
                                td { (b["assignee"].as_str().unwrap_or(t("未认领", "unassigned"))) }
                                td { (b["open"]) }
                                td { (b["assigned"]) }
                                td { (hours(&b["oldest_age_seconds"])) }
                            }
                        }
                    }
                }
            }
            section.routine {
                h2 { (t("记录常规检查", "Record a routine inspection")) }
                p.form-error role="alert" hidden {}
                form #routine data-api="/api/outcomes" data-kind="routine" {
                    label { (t("商户编号", "Business id")) input name="business_id" required maxlength="128"; }
                    label { (t("领域", "Domain")) select name="domain" { option value="food" { (t("餐饮", "food")) } option value="tourism" { (t("文旅", "tourism")) } } }
                    label { (t("区域", "Region")) input name="region" required maxlength="128"; }
                    label { (t("检查时间", "Inspected at")) input type="datetime-local" name="inspected_at" required; }
                    fieldset {
                        legend { (t("结果", "Result")) }
                        label { input type="radio" name="outcome" value="1" required; (t("发现违规", "Violations found")) }
                        label { input type="radio" name="outcome" value="0"; (t("未发现违规", "None found")) }
                    }
                    label { (t("备注", "Note")) textarea name="note" maxlength="2000" rows="2" {} }
                    button type="submit" { (t("提交", "Record")) }
                }
            }
        },
    )
    .into_response()
}
