//! The PKCS#11 module is finalized when the last token handle and signer are dropped, and
//! initialised again by the next open. Its own test binary: in one process with other tests
//! the module would be in use by them. (An unfinalized SoftHSM2 raced its static destructors
//! with open sessions at exit and crashed about once in six runs of `pkcs11_softhsm`.)
#![cfg(feature = "pkcs11")]

mod common;

use std::sync::Arc;

use alloy_primitives::keccak256;
use bridge_signer::Signer;
use bridge_signer::pkcs11::{Pkcs11Signer, module_users};
use common::*;

/// `C_GetInfo` through a second load of the module (the same library in this process):
/// `CKR_CRYPTOKI_NOT_INITIALIZED` once finalized.
fn module_initialised() -> bool {
    // SAFETY (test only): loads the module already loaded by the signer and asks C_GetInfo,
    // which touches no session; the struct is plain data the module fills.
    let rv = unsafe {
        let lib = cryptoki_sys::Pkcs11::new(MODULE).expect("load module");
        let mut info = std::mem::zeroed::<cryptoki_sys::CK_INFO>();
        lib.C_GetInfo(&mut info)
    };
    match rv {
        cryptoki_sys::CKR_OK => true,
        cryptoki_sys::CKR_CRYPTOKI_NOT_INITIALIZED => false,
        other => panic!("C_GetInfo: {other:#x}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_handle_finalizes_and_the_next_open_initialises_again() {
    for round in 0..3u8 {
        let label = format!("finalize-{round}");
        let token = token(MAIN_TOKEN).await;
        token.generate_key(&label, None).await.unwrap();
        let mut cfg = config(MAIN_TOKEN, &label);
        cfg.sessions = 3;
        let signer = Arc::new(Pkcs11Signer::connect(&cfg).await.unwrap());
        // Signing at once, so that every worker opens its session.
        let tasks: Vec<_> = (0..12u8)
            .map(|i| {
                let signer = Arc::clone(&signer);
                tokio::spawn(async move {
                    let digest = keccak256([round, i]);
                    let sig = signer.sign_hash(&digest).await.unwrap();
                    assert_eq!(
                        sig.recover_address_from_prehash(&digest).unwrap(),
                        signer.address()
                    );
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let signer = Arc::into_inner(signer).expect("tasks done");
        assert_eq!(module_users(MODULE.as_ref()), 2, "round {round}");
        assert!(module_initialised());
        drop(token);
        assert_eq!(module_users(MODULE.as_ref()), 1);
        assert!(
            module_initialised(),
            "finalized while the signer still uses it"
        );
        // The pool's workers are joined in its drop: when it returns, the module is finalized.
        drop(signer);
        assert_eq!(module_users(MODULE.as_ref()), 0);
        assert!(!module_initialised(), "round {round}: not finalized");
    }
}
