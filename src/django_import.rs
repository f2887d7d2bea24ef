//! `storybook import-django FILE`: users moving in from a Django
//! deployment keep their accounts and passwords (contract v1.5, "Coming
//! from Django"). The dump (`manage.py dumpdata`, a JSON array) is read as
//! a stream twice: once to check every record (a bad one stops the import
//! before anything is written, naming it), once to write them in batches,
//! each in one transaction. Memory stays that of one batch.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Deserialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use storybook_store::{DjangoUser, Imported, Role, Settings, Store, Timestamp};

use crate::auth::django::StoredHash;

/// Records written per transaction.
const BATCH: usize = 500;
/// This server's longest display name and bio.
const MAX_DISPLAY_NAME_CHARS: usize = 50;
const MAX_BIO_CHARS: usize = 500;
/// What an unusable password is stored as (Django's own mark: `!`).
const UNUSABLE: &str = "!imported-unusable";

/// One record of the dump, as `dumpdata` writes it.
#[derive(Debug, Deserialize)]
struct Record {
    model: String,
    pk: i64,
    fields: Fields,
}

/// `AbstractUser`'s fields, and this app's `display_name`, `bio` and
/// `settings` when the model has them; others are ignored.
#[derive(Debug, Deserialize)]
struct Fields {
    username: String,
    #[serde(default)]
    email: String,
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    is_active: bool,
    #[serde(default)]
    is_staff: bool,
    #[serde(default)]
    is_superuser: bool,
    date_joined: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    bio: Option<String>,
    #[serde(default)]
    settings: Option<Settings>,
}

/// What the import did, for its one summary line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub imported: usize,
    pub skipped: usize,
    pub renamed: usize,
    pub without_email: usize,
    pub unusable_passwords: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {}, skipped {} (already here), renamed {}, without email {}, unusable passwords {}",
            self.imported, self.skipped, self.renamed, self.without_email, self.unusable_passwords
        )
    }
}

/// Checks the whole dump, then imports it; renames are printed
/// `old -> new` as they happen. Reading runs on a blocking thread and
/// hands batches to the writer through a channel of two: at most a few
/// batches are in memory, whatever the size of the dump.
pub async fn import(store: &Store, path: &Path, model: &str) -> Result<Summary, String> {
    let (checked_path, checked_model) = (path.to_owned(), model.to_owned());
    tokio::task::spawn_blocking(move || {
        for_each_record(&checked_path, &checked_model, |_, _| Ok(()))
    })
    .await
    .map_err(|e| e.to_string())??;
    let (batches, mut arriving) = tokio::sync::mpsc::channel::<Vec<DjangoUser>>(2);
    let (path, model) = (path.to_owned(), model.to_owned());
    let reader = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let stopped = || "the writer stopped".to_owned();
        for_each_record(&path, &model, |_, user| {
            batch.push(user);
            if batch.len() == BATCH {
                batches
                    .blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                    .map_err(|_| stopped())?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            batches.blocking_send(batch).map_err(|_| stopped())?;
        }
        Ok::<(), String>(())
    });
    let mut summary = Summary::default();
    while let Some(mut batch) = arriving.recv().await {
        write(store, &mut batch, &mut summary).await?;
    }
    reader.await.map_err(|e| e.to_string())??;
    Ok(summary)
}

async fn write(
    store: &Store,
    batch: &mut Vec<DjangoUser>,
    summary: &mut Summary,
) -> Result<(), String> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = store
        .import_django_users(batch)
        .await
        .map_err(|e| format!("writing users: {e}"))?;
    for (user, outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Imported::Skipped => summary.skipped += 1,
            Imported::New {
                renamed,
                without_email,
            } => {
                summary.imported += 1;
                if let Some(new) = renamed {
                    println!("{} -> {new}", user.username);
                    summary.renamed += 1;
                }
                summary.without_email += usize::from(without_email);
                summary.unusable_passwords += usize::from(user.password_hash == UNUSABLE);
            }
        }
    }
    batch.clear();
    Ok(())
}

/// Reads the dump as a stream, calling `each` with every record mapped;
/// the first bad record is an error naming it. Returns the count.
fn for_each_record(
    path: &Path,
    model: &str,
    mut each: impl FnMut(usize, DjangoUser) -> Result<(), String>,
) -> Result<usize, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut json = serde_json::Deserializer::from_reader(BufReader::new(file));
    let reader = Records {
        model,
        each: &mut each,
    };
    let count = reader.deserialize(&mut json).map_err(|e| e.to_string())?;
    json.end().map_err(|e| format!("after the records: {e}"))?;
    Ok(count)
}

struct Records<'a, F> {
    model: &'a str,
    each: &'a mut F,
}

impl<'de, F: FnMut(usize, DjangoUser) -> Result<(), String>> DeserializeSeed<'de>
    for Records<'_, F>
{
    type Value = usize;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(usize, DjangoUser) -> Result<(), String>> Visitor<'de> for Records<'_, F> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a dumpdata JSON array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        use serde::de::Error;
        let mut index = 0;
        loop {
            index += 1;
            let record = match seq.next_element::<Record>() {
                Ok(Some(record)) => record,
                Ok(None) => return Ok(index - 1),
                Err(e) => return Err(A::Error::custom(format!("record {index}: {e}"))),
            };
            let named = format!("record {index} ({} {})", record.model, record.pk);
            if record.model != self.model {
                return Err(A::Error::custom(format!(
                    "{named}: not a {} record (use --model)",
                    self.model
                )));
            }
            let user = map(record).map_err(|why| A::Error::custom(format!("{named}: {why}")))?;
            (self.each)(index, user).map_err(A::Error::custom)?;
        }
    }
}

/// A record as this server's user, as the contract maps it.
fn map(record: Record) -> Result<DjangoUser, String> {
    let fields = record.fields;
    if fields.username.trim().is_empty() {
        return Err("username is empty".into());
    }
    let created_at = parse_time(&fields.date_joined).ok_or_else(|| {
        format!(
            "date_joined {:?} is not a date and time",
            fields.date_joined
        )
    })?;
    let full_name = format!("{} {}", fields.first_name.trim(), fields.last_name.trim());
    let display_name = [
        fields.display_name.as_deref().unwrap_or_default().trim(),
        full_name.trim(),
        fields.username.trim(),
    ]
    .into_iter()
    .find(|name| !name.is_empty())
    .unwrap_or_default()
    .chars()
    .take(MAX_DISPLAY_NAME_CHARS)
    .collect();
    let password_hash = match StoredHash::parse(&fields.password) {
        StoredHash::Unusable => UNUSABLE.to_owned(),
        _ => fields.password,
    };
    let mut settings = fields.settings.unwrap_or_default();
    let defaults = Settings::default();
    if !["light", "dark", "system"].contains(&settings.theme.as_str()) {
        settings.theme = defaults.theme.clone();
    }
    if !["small", "medium", "large"].contains(&settings.font_size.as_str()) {
        settings.font_size = defaults.font_size.clone();
    }
    if settings.language.is_empty() || settings.language.len() > 16 {
        settings.language = defaults.language;
    }
    Ok(DjangoUser {
        model: record.model,
        pk: record.pk,
        username: fields.username.trim().to_owned(),
        email: fields.email,
        password_hash,
        display_name,
        bio: fields
            .bio
            .unwrap_or_default()
            .chars()
            .take(MAX_BIO_CHARS)
            .collect(),
        role: if fields.is_staff || fields.is_superuser {
            Role::Admin
        } else {
            Role::User
        },
        active: fields.is_active,
        settings,
        created_at,
    })
}

/// An RFC 3339 time as Django writes it (`2026-12-07T17:53:44.813Z`, or
/// with an offset) in milliseconds since the epoch.
fn parse_time(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    if bytes.len() < 19 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b' ')
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(Timestamp(seconds * 1000 + millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_times_parse_to_the_millisecond() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(Timestamp(0)));
        assert_eq!(
            parse_time("2026-12-07T17:53:44.813Z").map(|t| t.to_string()),
            Some("2026-12-07T17:53:44.813Z".to_owned())
        );
        assert_eq!(
            parse_time("2026-12-07T18:53:44+01:00"),
            parse_time("2026-12-07T17:53:44Z")
        );
        assert_eq!(
            parse_time("2000-02-29T00:00:00.5Z").map(|t| t.0 % 1000),
            Some(500)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-12-07T17:53:44+0100x",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
