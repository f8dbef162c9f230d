//! Printers for `batch/v1`: jobs (with the STATUS column added in 1.31) and
//! cron jobs.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::duration::human_duration;
use crate::fields::{
    age, arr_at, container_cells, format_label_selector, get, i64_at, int, is_deleting, name,
    opt_bool, opt_i64, opt_str, s, since, str_at, time_at,
};
use crate::Column;

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

pub(crate) const JOB_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "Status of the job."),
    Column::new(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    Column::new("Duration", "string", "Time required to complete the job."),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DESC).wide(),
    Column::new("Images", "string", IMAGES_DESC).wide(),
    Column::new(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    )
    .wide(),
];

/// `hasJobCondition`: the first condition of that type decides.
fn has_condition(job: &Value, ty: &str) -> bool {
    arr_at(job, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

pub(crate) fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = i64_at(job, &["status", "succeeded"]);
    let completions = match opt_i64(job, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_i64(job, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time_at(job, &["status", "startTime"]),
        time_at(job, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.signed_duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.signed_duration_since(start)),
    };
    let status = if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if is_deleting(job) {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(arr_at(job, &["spec", "template", "spec", "containers"]));
    vec![
        s(name(job)),
        s(status),
        s(completions),
        s(duration),
        age(job, now),
        names,
        images,
        s(format_label_selector(get(job, &["spec", "selector"]))),
    ]
}

pub(crate) const CRON_JOB_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column::new("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    Column::new("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions."),
    Column::new("Active", "integer", "A list of pointers to currently running jobs."),
    Column::new("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DESC).wide(),
    Column::new("Images", "string", IMAGES_DESC).wide(),
    Column::new("Selector", "string", "A label query over pods that should match the pod count.").wide(),
];

pub(crate) fn cron_job_cells(cj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last_schedule = match get(cj, &["status", "lastScheduleTime"]) {
        Some(_) => since(time_at(cj, &["status", "lastScheduleTime"]), now),
        None => "<none>".to_string(),
    };
    // printBoolPtr: the cell is text, not a JSON boolean.
    let suspend = match opt_bool(cj, &["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let (names, images) = container_cells(arr_at(
        cj,
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ],
    ));
    vec![
        s(name(cj)),
        s(str_at(cj, &["spec", "schedule"])),
        s(opt_str(cj, &["spec", "timeZone"]).unwrap_or("<none>")),
        s(suspend),
        int(i64::try_from(arr_at(cj, &["status", "active"]).len()).unwrap_or(i64::MAX)),
        s(last_schedule),
        age(cj, now),
        names,
        images,
        s(format_label_selector(get(
            cj,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
}
