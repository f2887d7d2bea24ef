//! Photo pages to text with Tesseract.
//!
//! Tesseract runs as a child process (`tesseract FILE stdout`), not as a
//! linked library: its ~37 MB per run is the child's and leaves with it, a
//! crash in it cannot take the server down, and a time-out can kill it.
//! Before anything is decoded the header is read for the pixel count
//! (decompression bombs), the bytes must be PNG or JPEG by content, and
//! EXIF orientation is applied so a phone photo reads upright.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use image::{ImageDecoder, ImageFormat, ImageReader};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcrError {
    #[error("the image is larger than {0} pixels")]
    TooManyPixels(u64),
    #[error("the image must be PNG or JPEG")]
    UnsupportedFormat,
    #[error("text recognition is not available on this server")]
    Unavailable,
    #[error("no text was recognised")]
    NoText,
    #[error("the image could not be read: {0}")]
    BadImage(String),
    #[error("text recognition failed: {0}")]
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct OcrSettings {
    /// The `tesseract` command.
    pub command: PathBuf,
    /// Language(s) for `-l`.
    pub language: String,
    pub max_pixels: u64,
    pub timeout: Duration,
    /// Recognitions at once.
    pub concurrency: usize,
}

impl Default for OcrSettings {
    fn default() -> Self {
        Self {
            command: PathBuf::from("tesseract"),
            language: "eng".into(),
            max_pixels: 25_000_000,
            timeout: Duration::from_secs(30),
            concurrency: 1,
        }
    }
}

pub struct Ocr {
    settings: OcrSettings,
    available: bool,
    permits: Semaphore,
}

/// PNG or JPEG, judged by the first bytes (never by the declared type).
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else {
        None
    }
}

/// Width and height from the header alone. A PNG's are the first chunk
/// (IHDR), read directly: nothing after it needs to exist or be valid.
pub fn dimensions(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), OcrError> {
    if format == ImageFormat::Png && bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        return Ok((width, height));
    }
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| OcrError::BadImage(e.to_string()))
}

/// Checks format and size in the contract's order: too many pixels first,
/// then a format that is not PNG or JPEG.
pub fn check(bytes: &[u8], max_pixels: u64) -> Result<ImageFormat, OcrError> {
    let format = sniff(bytes);
    if let Some(format) = format
        && let Ok((width, height)) = dimensions(bytes, format)
        && u64::from(width) * u64::from(height) > max_pixels
    {
        return Err(OcrError::TooManyPixels(max_pixels));
    }
    format.ok_or(OcrError::UnsupportedFormat)
}

impl Ocr {
    /// Probes the command once (`tesseract --version`, ~15 ms).
    pub fn new(settings: OcrSettings) -> Self {
        let available = std::process::Command::new(&settings.command)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let permits = Semaphore::new(settings.concurrency.max(1));
        Self {
            settings,
            available,
            permits,
        }
    }

    pub fn available(&self) -> bool {
        self.available
    }

    pub fn max_pixels(&self) -> u64 {
        self.settings.max_pixels
    }

    /// The text of a page photo. Call [`check`] first for the size and
    /// format answers; this repeats the checks for safety.
    pub async fn recognize(&self, bytes: Vec<u8>) -> Result<String, OcrError> {
        let format = check(&bytes, self.settings.max_pixels)?;
        if !self.available {
            return Err(OcrError::Unavailable);
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| OcrError::Failed(e.to_string()))?;
        // Decoding is CPU work and the largest allocation: off the async
        // threads, and dropped before the child runs.
        let upright = tokio::task::spawn_blocking(move || upright_grayscale_png(&bytes, format))
            .await
            .map_err(|e| OcrError::Failed(e.to_string()))??;
        let file = TempFile::write(&upright).await?;
        drop(upright);
        let mut child = tokio::process::Command::new(&self.settings.command)
            .arg(&file.0)
            .arg("stdout")
            .args(["-l", &self.settings.language])
            // Tesseract's OpenMP threads spin on small machines: one is
            // faster here and leaves the other core to the server.
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| OcrError::Failed(e.to_string()))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| OcrError::Failed("no output".into()))?;
        let run = async {
            use tokio::io::AsyncReadExt;
            let mut text = String::new();
            // Bounded: a page of text is small; anything past 1 MiB is junk.
            (&mut stdout)
                .take(1 << 20)
                .read_to_string(&mut text)
                .await
                .map_err(|e| OcrError::Failed(e.to_string()))?;
            let status = child
                .wait()
                .await
                .map_err(|e| OcrError::Failed(e.to_string()))?;
            if status.success() {
                Ok(text)
            } else {
                Err(OcrError::Failed(format!("tesseract exited with {status}")))
            }
        };
        let text = match tokio::time::timeout(self.settings.timeout, run).await {
            Ok(result) => result?,
            Err(_) => return Err(OcrError::Failed("tesseract took too long".into())),
        };
        let text = tidy(&text);
        if text.chars().any(char::is_alphanumeric) {
            Ok(text)
        } else {
            Err(OcrError::NoText)
        }
    }
}

/// Decodes, applies EXIF orientation, and re-encodes as 8-bit grey PNG
/// (a third of the size of colour for the file Tesseract reads).
fn upright_grayscale_png(bytes: &[u8], format: ImageFormat) -> Result<Vec<u8>, OcrError> {
    let bad = |e: image::ImageError| OcrError::BadImage(e.to_string());
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(bad)?;
    let orientation = decoder.orientation().map_err(bad)?;
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(bad)?;
    image.apply_orientation(orientation);
    let gray = image.into_luma8();
    let mut png = Vec::new();
    gray.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(bad)?;
    Ok(png)
}

/// Joins hyphenated line breaks, keeps paragraph breaks, folds the rest.
fn tidy(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .replace("-\n", "")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    async fn write(bytes: &[u8]) -> Result<Self, OcrError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("storybook-ocr-{}-{n}.png", std::process::id()));
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| OcrError::Failed(e.to_string()))?;
        Ok(Self(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::GrayImage::new(width, height);
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn formats_are_judged_by_content() {
        assert_eq!(sniff(&png(2, 2)), Some(ImageFormat::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(check(b"<svg/>", 100), Err(OcrError::UnsupportedFormat));
    }

    #[test]
    fn pixel_count_is_read_from_the_header() {
        assert_eq!(dimensions(&png(30, 20), ImageFormat::Png), Ok((30, 20)));
        assert_eq!(check(&png(30, 20), 599), Err(OcrError::TooManyPixels(599)));
        assert_eq!(check(&png(30, 20), 600), Ok(ImageFormat::Png));
    }

    #[test]
    fn tidies_text() {
        assert_eq!(
            tidy("Once up-\non a  time\nthere\n\n\nThe end.\n"),
            "Once upon a time there\n\nThe end."
        );
    }

    #[tokio::test]
    async fn a_missing_command_is_unavailable() {
        let ocr = Ocr::new(OcrSettings {
            command: "/nonexistent/tesseract".into(),
            ..OcrSettings::default()
        });
        assert!(!ocr.available());
        assert_eq!(ocr.recognize(png(10, 10)).await, Err(OcrError::Unavailable));
    }
}
