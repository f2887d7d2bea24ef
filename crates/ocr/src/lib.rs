//! Photo pages to text with Tesseract.
//!
//! Two child processes per photo, piped together: the preparation
//! ([`prepare`], run by the server binary's hidden `photo-prepare`
//! command) decodes the photo, applies its EXIF orientation so a phone
//! photo reads upright, and writes 8-bit grey PNG into Tesseract
//! (`tesseract stdin stdout`). Neither runs in the server: decoding a
//! 12 MP photo takes ~50 MB and Tesseract ~37 MB, and both leave with their
//! process; a decoder or Tesseract that crashes or hangs takes only its
//! child down, and the time-out kills both. Before anything is decoded the
//! header is read for the pixel count (decompression bombs), and the bytes
//! must be PNG or JPEG by content.

use std::ffi::OsString;
use std::io::Cursor;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use image::{ImageDecoder, ImageFormat, ImageReader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    /// The command that runs [`prepare`] (program and leading arguments:
    /// the server binary and `photo-prepare`); `--max-pixels N` is added.
    pub prepare_command: Vec<OsString>,
    /// Language(s) for `-l`.
    pub language: String,
    pub max_pixels: u64,
    /// Largest photo, in bytes (the upload and what the preparation reads).
    pub max_bytes: usize,
    pub timeout: Duration,
    /// Recognitions at once.
    pub concurrency: usize,
}

impl Default for OcrSettings {
    fn default() -> Self {
        Self {
            command: PathBuf::from("tesseract"),
            prepare_command: vec!["storybook".into(), "photo-prepare".into()],
            language: "eng".into(),
            max_pixels: 25_000_000,
            max_bytes: 5 * 1024 * 1024,
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

    pub fn max_bytes(&self) -> usize {
        self.settings.max_bytes
    }

    /// The text of a page photo. Call [`check`] first for the size and
    /// format answers; this repeats the checks for safety.
    pub async fn recognize(&self, bytes: Vec<u8>) -> Result<String, OcrError> {
        check(&bytes, self.settings.max_pixels)?;
        if !self.available {
            return Err(OcrError::Unavailable);
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| OcrError::Failed(e.to_string()))?;
        match tokio::time::timeout(self.settings.timeout, self.run_children(bytes)).await {
            Ok(result) => result,
            // Dropping the children's handles kills both.
            Err(_) => Err(OcrError::Failed("text recognition took too long".into())),
        }
    }

    /// The preparation's output piped into Tesseract; the photo goes in on
    /// one side, text comes out of the other.
    async fn run_children(&self, bytes: Vec<u8>) -> Result<String, OcrError> {
        let failed = |e: std::io::Error| OcrError::Failed(e.to_string());
        let Some((program, leading)) = self.settings.prepare_command.split_first() else {
            return Err(OcrError::Failed("no preparation command".into()));
        };
        let mut prepare = tokio::process::Command::new(program)
            .args(leading)
            .arg("--max-pixels")
            .arg(self.settings.max_pixels.to_string())
            .arg("--max-bytes")
            .arg(self.settings.max_bytes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        let (Some(mut photo_in), Some(png_out), Some(mut complaint)) = (
            prepare.stdin.take(),
            prepare.stdout.take(),
            prepare.stderr.take(),
        ) else {
            return Err(OcrError::Failed(
                "the preparation's pipes were not made".into(),
            ));
        };
        let mut tesseract = tokio::process::Command::new(&self.settings.command)
            .args(["stdin", "stdout", "-l", &self.settings.language])
            // Tesseract's OpenMP threads spin on small machines: one is
            // faster here and leaves the other core to the server.
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(TryInto::<Stdio>::try_into(png_out).map_err(failed)?)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        let mut text_out = tesseract
            .stdout
            .take()
            .ok_or_else(|| OcrError::Failed("no output".into()))?;
        let feed = async move {
            // A preparation that stops reading (it refused the photo) shows
            // as its own exit status below, not as this write's error.
            let _ = photo_in.write_all(&bytes).await;
        };
        let (mut text, mut why) = (String::new(), Vec::new());
        // Bounded: a page of text is small; anything past 1 MiB is junk.
        let mut text_out = (&mut text_out).take(1 << 20);
        let mut complaint = (&mut complaint).take(4096);
        let (_, read_text, _) = tokio::join!(
            feed,
            text_out.read_to_string(&mut text),
            complaint.read_to_end(&mut why),
        );
        let prepared = prepare.wait().await.map_err(failed)?;
        if !prepared.success() {
            let why = String::from_utf8_lossy(&why).trim().to_owned();
            return Err(prepare_error(prepared, why, self.settings.max_pixels));
        }
        read_text.map_err(failed)?;
        let recognized = tesseract.wait().await.map_err(failed)?;
        if !recognized.success() {
            return Err(OcrError::Failed(format!(
                "tesseract exited with {recognized}"
            )));
        }
        let text = tidy(&text);
        if text.chars().any(char::is_alphanumeric) {
            Ok(text)
        } else {
            Err(OcrError::NoText)
        }
    }
}

/// Exit statuses of the preparation command, read back by the server.
pub const PREPARE_BAD_IMAGE: i32 = 2;
pub const PREPARE_TOO_MANY_PIXELS: i32 = 3;
pub const PREPARE_UNSUPPORTED: i32 = 4;

/// The preparation, run in its own process: checks the photo again (it is
/// never trusted), decodes it, turns it upright by its EXIF orientation,
/// and encodes it as 8-bit grey PNG (a third of colour, which Tesseract
/// would make grey anyway).
pub fn prepare(bytes: &[u8], max_pixels: u64) -> Result<Vec<u8>, OcrError> {
    let format = check(bytes, max_pixels)?;
    upright_grayscale_png(bytes, format)
}

/// The `photo-prepare` command, run by the server as a child process: a
/// photo on `input`, grey upright PNG on `output`; a refusal is an exit
/// status the server reads back ([`prepare_exit_code`]) with the reason
/// on standard error. Returns the exit status.
pub fn prepare_command(
    input: impl std::io::Read,
    mut output: impl std::io::Write,
    max_bytes: usize,
    max_pixels: u64,
) -> u8 {
    let mut photo = Vec::new();
    if let Err(error) =
        std::io::Read::read_to_end(&mut input.take(max_bytes as u64 + 1), &mut photo)
    {
        eprintln!("cannot read the photo: {error}");
        return 1;
    }
    let prepared = if photo.len() > max_bytes {
        Err(OcrError::BadImage(format!("larger than {max_bytes} bytes")))
    } else {
        prepare(&photo, max_pixels)
    };
    match prepared {
        Ok(png) => match output.write_all(&png).and_then(|()| output.flush()) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("cannot write the prepared photo: {error}");
                1
            }
        },
        Err(error) => {
            eprintln!("{error}");
            prepare_exit_code(&error) as u8
        }
    }
}

/// The exit status [`prepare`]'s command reports an error with.
pub fn prepare_exit_code(error: &OcrError) -> i32 {
    match error {
        OcrError::TooManyPixels(_) => PREPARE_TOO_MANY_PIXELS,
        OcrError::UnsupportedFormat => PREPARE_UNSUPPORTED,
        _ => PREPARE_BAD_IMAGE,
    }
}

/// The error a failed preparation reported, read back from its exit
/// status ([`prepare_exit_code`] the other way) and what it wrote.
fn prepare_error(status: std::process::ExitStatus, why: String, max_pixels: u64) -> OcrError {
    match status.code() {
        Some(PREPARE_TOO_MANY_PIXELS) => OcrError::TooManyPixels(max_pixels),
        Some(PREPARE_UNSUPPORTED) => OcrError::UnsupportedFormat,
        Some(PREPARE_BAD_IMAGE) => OcrError::BadImage(why),
        _ => OcrError::Failed(format!(
            "the photo's preparation ended with {status}: {why}"
        )),
    }
}

/// Decodes, applies EXIF orientation, and re-encodes as 8-bit grey PNG.
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

    #[test]
    fn preparation_checks_then_makes_grey_png() {
        let prepared = prepare(&png(30, 20), 600).unwrap();
        let decoded = image::load_from_memory_with_format(&prepared, ImageFormat::Png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (30, 20));
        assert_eq!(decoded.color(), image::ColorType::L8);
        assert_eq!(
            prepare(&png(30, 20), 599),
            Err(OcrError::TooManyPixels(599))
        );
        assert_eq!(prepare(b"GIF89a", 600), Err(OcrError::UnsupportedFormat));
        let truncated = &png(30, 20)[..40];
        let error = prepare(truncated, 600).unwrap_err();
        assert!(matches!(error, OcrError::BadImage(_)), "{error:?}");
        assert_eq!(prepare_exit_code(&error), PREPARE_BAD_IMAGE);
        assert_eq!(
            prepare_exit_code(&OcrError::TooManyPixels(1)),
            PREPARE_TOO_MANY_PIXELS
        );
        // Read back, each status is the error it was made from.
        use std::os::unix::process::ExitStatusExt;
        for error in [
            OcrError::TooManyPixels(600),
            OcrError::UnsupportedFormat,
            OcrError::BadImage("cut off".into()),
        ] {
            let status = std::process::ExitStatus::from_raw(prepare_exit_code(&error) << 8);
            assert_eq!(prepare_error(status, "cut off".into(), 600), error);
        }
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
