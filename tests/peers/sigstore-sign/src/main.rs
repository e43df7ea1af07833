//! `sigstore-sign keygen DIR PASSWORD`: a cosign key pair made by
//! sigstore-rs, `DIR/cosign.key` (encrypted with PASSWORD, cosign's
//! format) and `DIR/cosign.pub` (PEM).
//!
//! `sigstore-sign sign KEY PASSWORD IMAGE`: signs IMAGE (`HOST:PORT/NAME:TAG`
//! on a plain-http registry) as `cosign sign --key` does: finds the
//! manifest digest, builds the simple-signing payload, signs it and
//! pushes the `sha256-HEX.sig` attachment, all with sigstore-rs's own
//! code. Prints the signed manifest digest.

use sigstore::cosign::constraint::PrivateKeySigner;
use sigstore::cosign::{ClientBuilder, Constraint, CosignCapabilities, SignatureLayer};
use sigstore::crypto::SigningScheme;
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use zeroize::Zeroizing;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn keygen(dir: &str, password: &str) -> Result<()> {
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer()?;
    let pair = signer.to_sigstore_keypair()?;
    let key = pair.private_key_to_encrypted_pem(password.as_bytes())?;
    std::fs::write(format!("{dir}/cosign.key"), key.as_bytes())?;
    std::fs::write(format!("{dir}/cosign.pub"), pair.public_key_to_pem()?)?;
    Ok(())
}

async fn sign(key: &str, password: &str, image: &str) -> Result<()> {
    let image: OciReference = image.parse()?;
    let config = ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    };
    let mut client = ClientBuilder::default()
        .with_oci_client_config(config)
        .build()?;
    let auth = Auth::Anonymous;
    let (sig_image, digest) = client.triangulate(&image, &auth).await?;
    let mut layer = SignatureLayer::new_unsigned(&image, &digest)?;
    let signer = PrivateKeySigner::new_with_raw(
        Zeroizing::new(std::fs::read(key)?),
        Zeroizing::new(password.as_bytes().to_vec()),
        &SigningScheme::ECDSA_P256_SHA256_ASN1,
    )?;
    signer.add_constraint(&mut layer)?;
    client
        .push_signature(None, &auth, &sig_image, vec![layer])
        .await?;
    println!("{digest}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["keygen", dir, password] => keygen(dir, password),
        ["sign", key, password, image] => sign(key, password, image).await,
        _ => Err("usage: sigstore-sign keygen DIR PASSWORD | sign KEY PASSWORD IMAGE".into()),
    };
    if let Err(e) = r {
        eprintln!("sigstore-sign: {e}");
        std::process::exit(1);
    }
}
