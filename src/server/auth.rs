//! Token verification at the handshake, and token issuing for HS256 deployments.
//!
//! A token is a JWT with `sub`, `exp` and an optional `environments` claim: a list of the
//! environment ids it may see, or `"*"` (or absent) for all of them.
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::config::JwtKey;
use super::error::AuthError;

/// The environments a token grants.
#[derive(Clone, Debug, PartialEq)]
pub enum EnvironmentGrant {
    /// Every environment, present and future (no `environments` claim).
    All,
    /// These environments only.
    Only(Vec<String>),
}

impl EnvironmentGrant {
    /// Whether the grant covers `environment_id`.
    pub fn allows(&self, environment_id: &str) -> bool {
        match self {
            EnvironmentGrant::All => true,
            EnvironmentGrant::Only(list) => list.iter().any(|e| e == environment_id),
        }
    }

    /// Whether this grant allows everything `other` does.
    pub fn covers(&self, other: &EnvironmentGrant) -> bool {
        match (self, other) {
            (EnvironmentGrant::All, _) => true,
            (EnvironmentGrant::Only(_), EnvironmentGrant::All) => false,
            (EnvironmentGrant::Only(_), EnvironmentGrant::Only(theirs)) => {
                theirs.iter().all(|e| self.allows(e))
            }
        }
    }
}

/// The latest `exp` accepted: 9999-12-31T23:59:59Z, the last instant RFC 3339 writes.
/// Later ones overflowed the writer's clock (a panic that leaked the connection slot).
pub const MAX_EXP: u64 = 253_402_300_799;

/// A token issued (`iat`) further in the future than this, beyond the configured leeway,
/// is refused: clocks drift by seconds, not by this.
const IAT_SKEW_S: u64 = 60;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environments: Option<serde_json::Value>,
}

/// What a verified token says about its holder.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The token's `sub`: who holds it (sessions are resumable by the same subject only).
    pub subject: String,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
    /// The environments it may subscribe to.
    pub environments: EnvironmentGrant,
}

/// Verifies and issues tokens for one key.
pub struct Authenticator {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    leeway_s: u64,
}

impl Authenticator {
    /// An authenticator for `key`, allowing `leeway_s` seconds of clock error on `exp`/`nbf`;
    /// refuses a key that does not parse.
    pub fn new(key: &JwtKey, leeway_s: u64) -> Result<Self, AuthError> {
        let (algorithm, decoding, encoding) = match key {
            JwtKey::Hs256Secret(secret) => {
                if secret.is_empty() {
                    return Err(AuthError::BadKey("the HS256 secret is empty".into()));
                }
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret),
                    Some(EncodingKey::from_secret(secret)),
                )
            }
            JwtKey::Rs256PublicPem(pem) => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(pem).map_err(|e| bad_key_for("RS256", "an RSA", e))?,
                None,
            ),
            JwtKey::Es256PublicPem(pem) => (
                Algorithm::ES256,
                DecodingKey::from_ec_pem(pem).map_err(|e| bad_key_for("ES256", "a P-256 EC", e))?,
                None,
            ),
        };
        Ok(Authenticator {
            algorithm,
            decoding,
            encoding,
            leeway_s,
        })
    }

    /// Verifies a token: signature, algorithm (exactly the configured one, so `alg: none`
    /// and algorithm confusion are refused), and expiry.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        self.check_header(token)?;
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = self.leeway_s;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(classify)?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(AuthError::Malformed("claim `sub` is empty".into()));
        }
        if claims.exp > MAX_EXP {
            return Err(AuthError::Malformed(
                "claim `exp` is beyond the year 9999".into(),
            ));
        }
        let now = now_s();
        if claims
            .iat
            .is_some_and(|iat| iat > now + self.leeway_s + IAT_SKEW_S)
        {
            return Err(AuthError::Malformed(
                "claim `iat` is in the future (token not issued yet)".into(),
            ));
        }
        Ok(Identity {
            subject: claims.sub,
            expires_at: claims.exp,
            environments: parse_grant(claims.environments)?,
        })
    }

    /// Refuses, before the signature is looked at, a header naming another algorithm
    /// (`none` included: it used to read as a malformed token) or critical extensions
    /// (`crit`, RFC 7515 4.1.11: this server understands none).
    fn check_header(&self, token: &str) -> Result<(), AuthError> {
        let Some(head) = token.split('.').next().and_then(base64url_decode) else {
            return Ok(()); // decode() names what is wrong with it
        };
        let Ok(serde_json::Value::Object(header)) = serde_json::from_slice(&head) else {
            return Ok(());
        };
        if let Some(alg) = header.get("alg").and_then(serde_json::Value::as_str) {
            let want = format!("{:?}", self.algorithm);
            if alg != want {
                return Err(AuthError::WrongAlgorithm(format!(
                    "the token is signed with '{alg}'; this server accepts {want} only"
                )));
            }
        }
        if header.contains_key("crit") {
            return Err(AuthError::Malformed(
                "header `crit` names extensions this server does not understand".into(),
            ));
        }
        Ok(())
    }

    /// Issues an HS256 token. `environments: None` grants all environments.
    pub fn issue(
        &self,
        subject: &str,
        environments: Option<&[String]>,
        ttl_s: u64,
        now_s: u64,
    ) -> Result<String, AuthError> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            AuthError::BadKey(
                "this server verifies with a public key and cannot issue tokens; \
                 issue them where the private key is"
                    .into(),
            )
        })?;
        if subject.is_empty() {
            return Err(AuthError::Malformed("the subject must not be empty".into()));
        }
        let exp = now_s
            .checked_add(ttl_s)
            .filter(|exp| *exp <= MAX_EXP)
            .ok_or_else(|| {
                AuthError::Malformed(format!(
                    "ttl_s {ttl_s} puts the expiry beyond the year 9999"
                ))
            })?;
        let claims = Claims {
            sub: subject.to_string(),
            exp,
            iat: Some(now_s),
            nbf: None,
            environments: environments.map(|list| serde_json::json!(list)),
        };
        encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| AuthError::BadKey(e.to_string()))
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Unpadded base64url (a JWT segment); None if it is not.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn bad_key_for(alg: &str, kind: &str, e: jsonwebtoken::errors::Error) -> AuthError {
    AuthError::BadKey(format!(
        "the {alg} public key is not {kind} public key in PEM form (-----BEGIN PUBLIC KEY-----): {e:?}"
    ))
}

fn parse_grant(value: Option<serde_json::Value>) -> Result<EnvironmentGrant, AuthError> {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => Ok(EnvironmentGrant::All),
        Some(Value::String(s)) if s == "*" => Ok(EnvironmentGrant::All),
        Some(Value::Array(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if s == "*" => return Ok(EnvironmentGrant::All),
                    Value::String(s) => list.push(s),
                    _ => {
                        return Err(AuthError::Malformed(
                            "claim `environments` must list strings".into(),
                        ))
                    }
                }
            }
            Ok(EnvironmentGrant::Only(list))
        }
        Some(_) => Err(AuthError::Malformed(
            "claim `environments` must be a list of environment ids or \"*\"".into(),
        )),
    }
}

fn classify(e: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => AuthError::Expired,
        K::InvalidSignature => AuthError::BadSignature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => AuthError::WrongAlgorithm(
            "the token's algorithm is not the one this server accepts".into(),
        ),
        K::ImmatureSignature => AuthError::Malformed("token is not valid yet (nbf)".into()),
        K::MissingRequiredClaim(c) => AuthError::Malformed(format!("claim `{c}` is missing")),
        _ => AuthError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn issued_token_verifies_with_its_grant() {
        let auth = Authenticator::new(&JwtKey::Hs256Secret(b"s3cret".to_vec()), 0).unwrap();
        let envs = vec!["room_001".to_string()];
        let token = auth.issue("me", Some(&envs), 60, now()).unwrap();
        let id = auth.verify(&token).unwrap();
        assert_eq!(id.subject, "me");
        assert!(id.environments.allows("room_001"));
        assert!(!id.environments.allows("room_002"));
    }

    #[test]
    fn other_secret_and_expiry_are_refused() {
        let a = Authenticator::new(&JwtKey::Hs256Secret(b"one".to_vec()), 0).unwrap();
        let b = Authenticator::new(&JwtKey::Hs256Secret(b"two".to_vec()), 0).unwrap();
        let token = a.issue("me", None, 60, now()).unwrap();
        assert!(matches!(b.verify(&token), Err(AuthError::BadSignature)));
        let old = a.issue("me", None, 1, now() - 100).unwrap();
        assert!(matches!(a.verify(&old), Err(AuthError::Expired)));
    }
}
