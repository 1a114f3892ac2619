//! Who a verified ID token names, and whether it shows a second factor (pure).

/// How the API server is told to read tokens; the gateway reads them the same way, so the
/// person is the same user name at both doors.
#[derive(Debug, Clone)]
pub struct UsernameRule {
    pub claim: String,
    /// `--oidc-username-prefix` as given (None: not given).
    pub prefix: Option<String>,
    pub issuer: String,
}

impl UsernameRule {
    /// The prefix the API server applies: none for `email` unless given; `<issuer>#` for
    /// other claims unless given; `-` means none.
    fn prefix(&self) -> String {
        match self.prefix.as_deref() {
            Some("-") => String::new(),
            Some(prefix) => prefix.to_owned(),
            None if self.claim == "email" => String::new(),
            None => format!("{}#", self.issuer),
        }
    }

    /// The user name for a token whose claim `self.claim` has `value`; `email_verified` as the
    /// token says (the API server refuses an email claim the token says is unverified).
    pub fn username(&self, value: Option<&str>, email_verified: Option<bool>) -> Result<String, String> {
        let value = value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("the ID token has no {} claim", self.claim))?;
        if self.claim == "email" && email_verified == Some(false) {
            return Err("the identity provider says this email address is not verified".into());
        }
        Ok(format!("{}{value}", self.prefix()))
    }
}

/// Which `amr` and `acr` values count as a second factor.
#[derive(Debug, Clone)]
pub struct SecondFactor {
    pub amr: Vec<String>,
    pub acr: Vec<String>,
}

impl SecondFactor {
    pub fn shown_by(&self, amr: &[String], acr: Option<&str>) -> bool {
        amr.iter().any(|method| self.amr.iter().any(|m| m.eq_ignore_ascii_case(method)))
            || acr.is_some_and(|acr| self.acr.iter().any(|a| !a.is_empty() && a == acr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(claim: &str, prefix: Option<&str>) -> UsernameRule {
        UsernameRule {
            claim: claim.into(),
            prefix: prefix.map(str::to_owned),
            issuer: "https://idp/realms/r".into(),
        }
    }

    #[test]
    fn user_names_follow_the_api_servers_claim_and_prefix_rules() {
        assert_eq!(rule("email", None).username(Some("ada@x"), Some(true)), Ok("ada@x".into()));
        assert_eq!(rule("email", Some("oidc:")).username(Some("ada@x"), None), Ok("oidc:ada@x".into()));
        assert_eq!(rule("sub", None).username(Some("123"), None), Ok("https://idp/realms/r#123".into()));
        assert_eq!(rule("sub", Some("-")).username(Some("123"), None), Ok("123".into()));
        assert!(rule("email", None).username(Some("ada@x"), Some(false)).is_err(), "unverified");
        assert!(rule("email", None).username(None, None).is_err(), "missing");
        assert!(rule("email", None).username(Some(""), None).is_err(), "empty");
    }

    #[test]
    fn a_second_factor_is_an_amr_or_acr_from_the_configured_lists() {
        let factor = SecondFactor { amr: vec!["otp".into(), "hwk".into()], acr: vec!["gold".into()] };
        assert!(factor.shown_by(&["pwd".into(), "otp".into()], None));
        assert!(factor.shown_by(&["HWK".into()], None));
        assert!(factor.shown_by(&[], Some("gold")));
        assert!(!factor.shown_by(&["pwd".into()], Some("1")));
        assert!(!factor.shown_by(&[], None));
        let no_acr = SecondFactor { amr: vec![], acr: vec![String::new()] };
        assert!(!no_acr.shown_by(&[], Some("")), "an empty list entry matches nothing");
    }
}
