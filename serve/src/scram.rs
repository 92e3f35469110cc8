//! SCRAM-SHA-256 password authentication (RFC 5802, RFC 7677), the server
//! side, as Postgres offers it: the password never crosses the wire, and
//! the server proves it knows the verifier too.

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::error::PgError;

/// The mechanism's name.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// PBKDF2 rounds, Postgres's default.
const ITERATIONS: usize = 4096;

/// What the server keeps of a password.
#[derive(Clone)]
pub struct Verifier {
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(..)")
    }
}

impl Verifier {
    /// The verifier of `password` under a fresh random salt.
    pub fn new(password: &str) -> Result<Verifier, ErrorStack> {
        let mut salt = vec![0; 16];
        openssl::rand::rand_bytes(&mut salt)?;
        let mut salted = [0u8; 32];
        openssl::pkcs5::pbkdf2_hmac(
            password.as_bytes(),
            &salt,
            ITERATIONS,
            MessageDigest::sha256(),
            &mut salted,
        )?;
        let client_key = hmac(&salted, b"Client Key")?;
        Ok(Verifier {
            salt,
            stored_key: openssl::sha::sha256(&client_key).to_vec(),
            server_key: hmac(&salted, b"Server Key")?,
        })
    }
}

/// One exchange, between the client's first message and its proof.
pub struct Exchange {
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// The server's first message for the client's first (`n,,n=,r=NONCE`).
pub fn server_first(verifier: &Verifier, client_first: &[u8]) -> Result<Exchange, PgError> {
    let text = std::str::from_utf8(client_first).map_err(|_| malformed())?;
    let mut parts = text.splitn(3, ',');
    let (Some(cbind), Some(_authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    // `y`: the client could bind to the channel but the server does not
    // offer it; `p=`: binding asked for, which is not offered.
    if cbind != "n" && cbind != "y" {
        return Err(PgError::new("28000", "SCRAM channel binding is not supported"));
    }
    let client_nonce = attribute(bare, 'r').ok_or_else(malformed)?;
    let mut random = [0u8; 18];
    openssl::rand::rand_bytes(&mut random).map_err(internal)?;
    let nonce = format!("{client_nonce}{}", openssl::base64::encode_block(&random));
    let server_first = format!(
        "r={nonce},s={},i={ITERATIONS}",
        openssl::base64::encode_block(&verifier.salt)
    );
    let gs2_len = text.len() - bare.len();
    Ok(Exchange {
        gs2_header: text[..gs2_len].to_string(),
        client_first_bare: bare.to_string(),
        server_first,
        nonce,
    })
}

impl Exchange {
    /// The server's first message.
    pub fn message(&self) -> &str {
        &self.server_first
    }

    /// Checks the client's proof; the server's final message (its own
    /// proof) when it holds.
    pub fn server_final(&self, verifier: &Verifier, client_final: &[u8]) -> Result<String, PgError> {
        let text = std::str::from_utf8(client_final).map_err(|_| malformed())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(malformed)?;
        let binding = attribute(without_proof, 'c').ok_or_else(malformed)?;
        let binding = openssl::base64::decode_block(binding).map_err(|_| malformed())?;
        if binding != self.gs2_header.as_bytes() || attribute(without_proof, 'r') != Some(self.nonce.as_str()) {
            return Err(malformed());
        }
        let proof = openssl::base64::decode_block(proof).map_err(|_| malformed())?;
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let signature = hmac(&verifier.stored_key, auth_message.as_bytes()).map_err(internal)?;
        if proof.len() != signature.len() {
            return Err(malformed());
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let stored = openssl::sha::sha256(&client_key);
        if !openssl::memcmp::eq(&stored, &verifier.stored_key) {
            return Err(PgError::new("28P01", "password authentication failed"));
        }
        let server_signature = hmac(&verifier.server_key, auth_message.as_bytes()).map_err(internal)?;
        Ok(format!("v={}", openssl::base64::encode_block(&server_signature)))
    }
}

fn attribute(message: &str, name: char) -> Option<&str> {
    message.split(',').find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

fn hmac(key: &[u8], data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let key = PKey::hmac(key)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
    signer.update(data)?;
    signer.sign_to_vec()
}

fn malformed() -> PgError {
    PgError::new("08P01", "malformed SCRAM message")
}

fn internal(e: ErrorStack) -> PgError {
    PgError::new("XX000", format!("SCRAM failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's side of the exchange, from RFC 5802's definitions.
    fn client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
        let salt = openssl::base64::decode_block(attribute(server_first, 's').unwrap()).unwrap();
        let iterations: usize = attribute(server_first, 'i').unwrap().parse().unwrap();
        let mut salted = [0u8; 32];
        openssl::pkcs5::pbkdf2_hmac(
            password.as_bytes(),
            &salt,
            iterations,
            MessageDigest::sha256(),
            &mut salted,
        )
        .unwrap();
        let client_key = hmac(&salted, b"Client Key").unwrap();
        let stored_key = openssl::sha::sha256(&client_key);
        let without_proof = format!("c=biws,r={}", attribute(server_first, 'r').unwrap());
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth.as_bytes()).unwrap();
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", openssl::base64::encode_block(&proof))
    }

    #[test]
    fn the_right_password_passes_and_a_wrong_one_fails() {
        let verifier = Verifier::new("pencil").unwrap();
        for (password, ok) in [("pencil", true), ("pen", false)] {
            let exchange = server_first(&verifier, b"n,,n=,r=rOprNGfwEbeRWgbNEkqO").unwrap();
            let last = client_final(password, "n=,r=rOprNGfwEbeRWgbNEkqO", exchange.message());
            let result = exchange.server_final(&verifier, last.as_bytes());
            assert_eq!(result.is_ok(), ok, "{password}");
        }
        assert!(server_first(&verifier, b"p=tls-server-end-point,,n=,r=x").is_err());
    }
}
