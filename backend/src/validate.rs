//! Input rules shared by the REST routes and the chat tools; each error names the field.

use crate::error::ApiError;

/// Longest task title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest task description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in characters (bounds hashing work).
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest email, per RFC 5321.
pub const MAX_EMAIL_CHARS: usize = 254;

/// Refuses NUL characters, which PostgreSQL cannot store in text (it would fail the query).
pub fn no_nul(field: &str, s: &str) -> Result<(), ApiError> {
    if s.contains('\0') {
        return Err(ApiError::validation(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// Trims and checks a title.
pub fn title(raw: &str) -> Result<String, ApiError> {
    no_nul("title", raw)?;
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 {
        return Err(ApiError::validation("title must not be empty"));
    }
    if n > MAX_TITLE_CHARS {
        return Err(ApiError::validation(format!(
            "title must be at most {MAX_TITLE_CHARS} characters (it has {n})"
        )));
    }
    Ok(t.to_owned())
}

/// Trims and checks a description; empty becomes `None`.
pub fn description(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(d) = raw.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    no_nul("description", d)?;
    let n = d.chars().count();
    if n > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::validation(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters (it has {n})"
        )));
    }
    Ok(Some(d.to_owned()))
}

/// Trims, lowercases and checks an email address.
pub fn email(raw: &str) -> Result<String, ApiError> {
    no_nul("email", raw)?;
    let e = raw.trim().to_lowercase();
    if e.is_empty() {
        return Err(ApiError::validation("email must not be empty"));
    }
    if e.chars().count() > MAX_EMAIL_CHARS || !email_address::EmailAddress::is_valid(&e) {
        return Err(ApiError::validation(
            "email must be a valid address like name@example.com",
        ));
    }
    Ok(e)
}

/// Checks a password's length (never trimmed: spaces are allowed characters).
pub fn password(raw: &str) -> Result<(), ApiError> {
    let n = raw.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(ApiError::validation(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ApiError::validation(format!(
            "password must be at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn title_is_trimmed_and_bounded_in_characters() {
        assert_eq!(title("  hi ").unwrap(), "hi");
        assert!(title("   ").is_err());
        assert!(title(&"é".repeat(200)).is_ok());
        assert!(title(&"é".repeat(201)).is_err());
    }

    #[test]
    fn nul_characters_are_refused_naming_the_field() {
        assert!(title("a\0b").is_err());
        assert!(description(Some("a\0b")).is_err());
    }

    #[test]
    fn empty_description_becomes_none() {
        assert_eq!(description(Some("  ")).unwrap(), None);
        assert!(description(Some(&"x".repeat(1001))).is_err());
    }

    #[test]
    fn email_is_normalised() {
        assert_eq!(email(" Bob@Example.COM ").unwrap(), "bob@example.com");
        assert!(email("not-an-email").is_err());
    }
}
