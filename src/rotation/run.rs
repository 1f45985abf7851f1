//! `keys rotate`: the steps, each checked against the chain, done, then recorded (see the
//! module map in `mod.rs`).

use super::RotationError;
use super::keys;
use super::store::{NewKey, Rotation, RotationStore, Step};
use crate::admin_tx::{self, AdminTx, TxSigner};
use crate::chain::{BlockTag, ChainClient};
use crate::config::{AgentConfig, Side};
use crate::contracts::Bridge;
use crate::txmgr::GuardedSigner;
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use bridge_signer::guard::{Journal, RotationPermit};
use bridge_signer::{Guard, Signer, SignerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `keys rotate` was asked to do.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    pub config: AgentConfig,
    /// An existing key to rotate to; `None`: create one (`<old label>-r<rotation id>`).
    pub new_key: Option<NewKey>,
    /// Print the plan and the transactions; send, create and record nothing.
    pub dry_run: bool,
    /// Destroy the old key at the end (after a confirmation unless `yes`).
    pub destroy_old: bool,
    pub yes: bool,
    /// Gas to move to the new address per chain, in wei; default half the old balance.
    pub fund: Option<U256>,
    /// How long to wait for a running agent to switch.
    pub switch_timeout: Duration,
}

/// Where progress goes, and who answers the confirmation.
pub trait Ui {
    /// One line of progress.
    fn say(&self, line: &str);
    /// A yes/no question; `false` when it cannot be asked.
    fn confirm(&self, question: &str) -> bool;
    /// A step (`Step::name`, e.g. `propose:child`) took effect and is not recorded yet: the
    /// worst moment for a crash. Nothing happens here in `bridge-agent`; the development
    /// binary's crash test (`bridge-dev`) aborts here to prove that a re-run resumes.
    fn took_effect(&self, _step: &str) {}
}

/// How the rotation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rotation: Option<i64>,
    pub old: Address,
    pub new: Option<Address>,
    pub dry_run: bool,
}

struct Chain {
    side: Side,
    client: ChainClient,
    bridge: Address,
    fees: crate::config::FeePolicy,
    /// `None` in a dry run, which signs nothing.
    journal: Option<Arc<Journal>>,
}

fn coins(wei: U256) -> String {
    alloy::primitives::utils::format_ether(wei)
}

fn chain_err(side: Side) -> impl FnOnce(crate::chain::ChainError) -> RotationError {
    move |source| RotationError::Chain { side, source }
}

fn tx_err(side: Side) -> impl FnOnce(admin_tx::AdminTxError) -> RotationError {
    move |source| RotationError::Tx {
        side,
        source: Box::new(source),
    }
}

async fn is_operator(c: &Chain, who: Address) -> Result<bool, RotationError> {
    let bridge = c.bridge;
    c.client
        .run("Bridge.operators", move |p| async move {
            Bridge::new(bridge, p).operators(who).call().await
        })
        .await
        .map_err(chain_err(c.side))
}

async fn pending_key(c: &Chain, old: Address) -> Result<Address, RotationError> {
    let bridge = c.bridge;
    c.client
        .run("Bridge.pendingOperatorKey", move |p| async move {
            Bridge::new(bridge, p).pendingOperatorKey(old).call().await
        })
        .await
        .map_err(chain_err(c.side))
}

/// The `keys rotate` flag that names a new key in `backend`.
fn new_key_flag(backend: bridge_signer::Backend) -> &'static str {
    match backend {
        bridge_signer::Backend::Pkcs11 => "--new-key-label",
        bridge_signer::Backend::AwsKms => "--new-kms-key",
    }
}

/// Rotates (or resumes rotating) the operator key of `opts.config`.
pub async fn rotate(opts: RotateOptions, ui: &dyn Ui) -> Result<Summary, RotationError> {
    let cfg = &opts.config;
    let base = keys::common_signer(cfg)?.clone();
    if let Some(key) = &opts.new_key {
        keys::rotated(&base, key).map_err(|_| {
            RotationError::Usage(format!(
                "the new key is a {} key ({key}), but [signer] uses {}: name the new key with {}",
                key.backend(),
                base.backend(),
                new_key_flag(base.backend())
            ))
        })?;
    }
    let databases = crate::store::Databases::open(cfg)
        .map_err(|e| RotationError::Store(crate::store::StoreError::from(e).into()))?;
    let store = databases.open_rotations()?;
    let mut chains = Vec::new();
    for side in Side::ALL {
        let client = ChainClient::connect(crate::chain::access_config(cfg, side))
            .await
            .map_err(chain_err(side))?;
        let chain = cfg.chain(side);
        let journal = if opts.dry_run {
            None
        } else {
            Some(Arc::new(databases.open_journal(side, None)?))
        };
        chains.push(Chain {
            side,
            client,
            bridge: chain.bridge,
            fees: chain.fees,
            journal,
        });
    }

    // The rotation to work on: the unfinished one, or a new one.
    let under_way = store.latest()?.filter(|r| !r.finished());
    if let (Some(r), Some(asked)) = (&under_way, &opts.new_key)
        && r.new_key != *asked
    {
        return Err(RotationError::Usage(format!(
            "rotation {} to {} is under way; re-run without a new key option (or with the same one) to finish it first",
            r.id, r.new_key
        )));
    }
    let old_cfg = match &under_way {
        Some(r) => old_key_of(cfg, &store, r)?,
        None => keys::seated(cfg, Side::Parent, &store)?,
    };
    let old_signer = old_cfg
        .connect()
        .await
        .map_err(|e| RotationError::Key(format!("old key ({}): {e}", keys::describe(&old_cfg))))?;
    let old = old_signer.address();
    if let Some(r) = &under_way
        && r.old != old
    {
        return Err(RotationError::Key(format!(
            "rotation {} moves the seat of {}, but the old key ({}) signs as {old}",
            r.id,
            r.old,
            keys::describe(&old_cfg)
        )));
    }
    if under_way.is_none() {
        for c in &chains {
            if !is_operator(c, old).await? {
                return Err(RotationError::Usage(format!(
                    "{old} ({}) holds no operator seat on the {} bridge {}: nothing to rotate",
                    keys::describe(&old_cfg),
                    c.side,
                    c.bridge
                )));
            }
        }
    }

    let rotation = match (&under_way, opts.dry_run) {
        (Some(r), _) => {
            ui.say(&format!(
                "resuming rotation {} of {old} to {}: done so far: {}",
                r.id,
                r.new_key,
                if r.steps.is_empty() {
                    "nothing".to_owned()
                } else {
                    r.steps
                        .iter()
                        .map(|(s, _)| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
            r.clone()
        }
        (None, true) => {
            let id = store.latest()?.map(|r| r.id + 1).unwrap_or(1);
            let new_key = opts
                .new_key
                .clone()
                .unwrap_or_else(|| keys::default_new_key(&base, id));
            let new = keys::ensure_key(&base, &new_key, false).await.ok();
            Rotation {
                id,
                old,
                new,
                new_key,
                state: "active".into(),
                steps: Vec::new(),
            }
        }
        (None, false) => {
            let (chosen, base) = (opts.new_key.clone(), base.clone());
            let (id, new_key) = store.begin(old, move |id| {
                chosen.unwrap_or_else(|| keys::default_new_key(&base, id))
            })?;
            ui.say(&format!(
                "rotation {id}: {old} ({}) → {new_key}",
                keys::describe(&old_cfg)
            ));
            store.get(id)?.expect("just written")
        }
    };
    if opts.dry_run {
        return dry_run(&opts, ui, &chains, &rotation, &old_signer).await;
    }
    let id = rotation.id;

    // 1. The new key.
    let new = match rotation.new {
        Some(new) => new,
        None => {
            let create = opts.new_key.is_none();
            let new = keys::ensure_key(&base, &rotation.new_key, create).await?;
            ui.took_effect(&Step::Key.name());
            store.set_new_address(id, new)?;
            new
        }
    };
    ui.say(&format!(
        "[1/7] key      {} → address {new}",
        rotation.new_key
    ));
    let permit = RotationPermit { old, new };
    let new_cfg = keys::rotated(&base, &rotation.new_key)?;
    let new_signer = new_cfg
        .connect()
        .await
        .map_err(|e| RotationError::Key(format!("new key ({}): {e}", keys::describe(&new_cfg))))?;
    if new_signer.address() != new {
        return Err(RotationError::Key(format!(
            "the new key signs as {}, the rotation recorded {new}",
            new_signer.address()
        )));
    }
    let guard = |signer: &Arc<dyn Signer>, c: &Chain| -> GuardedSigner {
        Guard::with_journal(
            Arc::clone(signer),
            c.client.chain_id(),
            c.bridge,
            Arc::clone(
                c.journal
                    .as_ref()
                    .expect("journals are open outside a dry run"),
            ),
        )
        .with_rotation_permit(permit)
    };
    let done = |step: Step| -> Result<bool, RotationError> {
        Ok(store.get(id)?.is_some_and(|r| r.done(step)))
    };

    // 2. Gas for the new address, from the old account.
    for c in &chains {
        let step = Step::Fund(c.side);
        if done(step)? || done(Step::Accept(c.side))? {
            ui.say(&format!("[2/7] fund     {}: done", c.side));
            continue;
        }
        let old_balance = c.client.balance(old).await.map_err(chain_err(c.side))?;
        let amount = opts.fund.unwrap_or(old_balance / U256::from(2));
        let have = c.client.balance(new).await.map_err(chain_err(c.side))?;
        if have >= amount && !have.is_zero() {
            store.record(id, step, &format!("already held {}", coins(have)))?;
            ui.say(&format!(
                "[2/7] fund     {}: {new} already holds {} coins",
                c.side,
                coins(have)
            ));
            continue;
        }
        let what = format!("gas {} coins {old} → {new}", coins(amount - have));
        let tx = transfer_tx(new, amount - have, what);
        let mined = send_step(c, &guard(&old_signer, c), &tx, &store, id, step, ui).await?;
        ui.say(&format!(
            "[2/7] fund     {}: sent {} coins to {new} (tx {}, block {})",
            c.side,
            coins(amount - have),
            mined.tx_hash,
            mined.block
        ));
    }

    // 3. The old key proposes the new address.
    for c in &chains {
        let step = Step::Propose(c.side);
        if done(step)? || done(Step::Accept(c.side))? {
            ui.say(&format!("[3/7] propose  {}: done", c.side));
            continue;
        }
        if is_operator(c, new).await? || pending_key(c, old).await? == new {
            store.record(id, step, "found on chain")?;
            ui.say(&format!("[3/7] propose  {}: already on chain", c.side));
            continue;
        }
        let tx = propose_tx(c, new);
        let mined = send_step(c, &guard(&old_signer, c), &tx, &store, id, step, ui).await?;
        ui.say(&format!(
            "[3/7] propose  {}: proposeOperatorKey({new}) by {old} (tx {})",
            c.side, mined.tx_hash
        ));
    }

    // 4. The new key accepts: the seat moves in this one transaction.
    for c in &chains {
        let step = Step::Accept(c.side);
        if done(step)? {
            ui.say(&format!("[4/7] accept   {}: done", c.side));
            continue;
        }
        if is_operator(c, new).await? {
            store.record(id, step, "found on chain")?;
            ui.say(&format!(
                "[4/7] accept   {}: {new} already holds the seat",
                c.side
            ));
            continue;
        }
        let tx = accept_tx(c, old);
        let mined = send_step(c, &guard(&new_signer, c), &tx, &store, id, step, ui).await?;
        ui.say(&format!(
            "[4/7] accept   {}: acceptOperatorKey({old}) by {new} (tx {}): the seat is {new}'s",
            c.side, mined.tx_hash
        ));
    }

    // 5. The running agent switches (it watches the store and the chain).
    wait_for_switch(&opts, ui, &store, id, new).await?;

    // 6. The old account's leftover gas goes to the new address.
    for c in &chains {
        let step = Step::Sweep(c.side);
        if done(step)? {
            ui.say(&format!("[6/7] sweep    {}: done", c.side));
            continue;
        }
        wait_idle(c, old).await?;
        let balance = c.client.balance(old).await.map_err(chain_err(c.side))?;
        let cost = admin_tx::max_cost(&c.client, &c.fees, admin_tx::TRANSFER_GAS)
            .await
            .map_err(chain_err(c.side))?;
        if balance <= cost {
            store.record(id, step, "nothing to sweep")?;
            ui.say(&format!("[6/7] sweep    {}: nothing left to sweep", c.side));
            continue;
        }
        let what = format!("sweep {} coins {old} → {new}", coins(balance - cost));
        let tx = transfer_tx(new, balance - cost, what);
        let mined = send_step(c, &guard(&old_signer, c), &tx, &store, id, step, ui).await?;
        ui.say(&format!(
            "[6/7] sweep    {}: {} coins back to {new} (tx {})",
            c.side,
            coins(balance - cost),
            mined.tx_hash
        ));
    }

    // 7. Retire (and maybe destroy) the old key.
    if !done(Step::Retire)? {
        ui.took_effect(&Step::Retire.name());
        store.record(id, Step::Retire, &keys::describe(&old_cfg))?;
    }
    ui.say(&format!(
        "[7/7] retire   {old} ({}) retired; {new} holds the seat on both bridges",
        keys::describe(&old_cfg)
    ));
    if opts.destroy_old && !done(Step::Destroy)? {
        let question = format!(
            "Destroy the old key {} ({old})? It can never sign again; this cannot be undone.",
            keys::describe(&old_cfg)
        );
        if opts.yes || ui.confirm(&question) {
            drop(old_signer);
            let what = keys::destroy(&old_cfg).await?;
            store.record(id, Step::Destroy, &what)?;
            ui.say(&format!("        destroy  {what}"));
        } else {
            ui.say("        destroy  not confirmed: the old key is retired but kept");
        }
    }
    Ok(Summary {
        rotation: Some(id),
        old,
        new: Some(new),
        dry_run: false,
    })
}

/// The key that held the seat before rotation `r`.
fn old_key_of(
    cfg: &AgentConfig,
    store: &RotationStore,
    r: &Rotation,
) -> Result<SignerConfig, RotationError> {
    let before = store
        .all()?
        .into_iter()
        .rfind(|x| x.id < r.id && x.done(Step::Accept(Side::Parent)));
    match before {
        Some(prev) => keys::rotated(keys::common_signer(cfg)?, &prev.new_key),
        None => Ok(keys::common_signer(cfg)?.clone()),
    }
}

/// A plain coin transfer (gas funding, sweep): the only non-bridge call a rotation permit allows.
fn transfer_tx(to: Address, value: U256, what: String) -> AdminTx {
    AdminTx {
        to,
        value,
        input: Bytes::new(),
        what,
    }
}

/// Sends one step's transaction and records the step with its hash. [`Ui::took_effect`] sits
/// between the two: the effect is on chain, the record not yet written, which is the case a
/// re-run must recognise from the chain.
async fn send_step(
    c: &Chain,
    guard: &GuardedSigner,
    tx: &AdminTx,
    store: &RotationStore,
    id: i64,
    step: Step,
    ui: &dyn Ui,
) -> Result<admin_tx::Mined, RotationError> {
    let mined = admin_tx::send(&c.client, &c.fees, &TxSigner::Guarded(guard), tx)
        .await
        .map_err(tx_err(c.side))?;
    ui.took_effect(&step.name());
    store.record(id, step, &mined.tx_hash.to_string())?;
    Ok(mined)
}

fn propose_tx(c: &Chain, new: Address) -> AdminTx {
    AdminTx {
        to: c.bridge,
        value: U256::ZERO,
        input: Bridge::proposeOperatorKeyCall { newOperator: new }
            .abi_encode()
            .into(),
        what: format!("proposeOperatorKey({new})"),
    }
}

fn accept_tx(c: &Chain, old: Address) -> AdminTx {
    AdminTx {
        to: c.bridge,
        value: U256::ZERO,
        input: Bridge::acceptOperatorKeyCall { oldOperator: old }
            .abi_encode()
            .into(),
        what: format!("acceptOperatorKey({old})"),
    }
}

/// Waits until the old account has no pending transaction (the agent's last votes, ours).
async fn wait_idle(c: &Chain, who: Address) -> Result<(), RotationError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = c
            .client
            .transaction_count(who, BlockTag::Pending)
            .await
            .map_err(chain_err(c.side))?;
        let latest = c
            .client
            .transaction_count(who, BlockTag::Latest)
            .await
            .map_err(chain_err(c.side))?;
        if pending == latest || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn agent_listening(listen: std::net::SocketAddr) -> bool {
    let addr = if listen.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

async fn wait_for_switch(
    opts: &RotateOptions,
    ui: &dyn Ui,
    store: &RotationStore,
    id: i64,
    new: Address,
) -> Result<(), RotationError> {
    let listen = opts.config.agent_http_address();
    let switched = |side| -> Result<bool, RotationError> {
        Ok(store.get(id)?.is_some_and(|r| r.done(Step::Switch(side))))
    };
    if Side::ALL.iter().all(|s| switched(*s).unwrap_or(false)) {
        ui.say("[5/7] switch   done");
        return Ok(());
    }
    if !agent_listening(listen).await {
        for side in Side::ALL {
            store.record(
                id,
                Step::Switch(side),
                "no agent was running; `bridge-agent run` starts with the new key",
            )?;
        }
        ui.say(&format!(
            "[5/7] switch   no agent listens on {listen}: `bridge-agent run` will start with {new}"
        ));
        return Ok(());
    }
    let deadline = Instant::now() + opts.switch_timeout;
    for side in Side::ALL {
        while !switched(side)? {
            if Instant::now() > deadline {
                return Err(RotationError::SwitchTimeout {
                    listen,
                    side,
                    secs: opts.switch_timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ui.say(&format!(
            "[5/7] switch   {side}: the running agent votes with {new}"
        ));
    }
    Ok(())
}

/// Prints the plan and every transaction, signs and sends nothing.
async fn dry_run(
    opts: &RotateOptions,
    ui: &dyn Ui,
    chains: &[Chain],
    r: &Rotation,
    old_signer: &Arc<dyn Signer>,
) -> Result<Summary, RotationError> {
    let old = old_signer.address();
    let new_text = r
        .new
        .map(|a| a.to_string())
        .unwrap_or_else(|| "<address of the new key>".into());
    ui.say("DRY RUN: nothing is created, signed, sent or recorded.");
    ui.say(&format!(
        "[1/7] key      {} {}",
        r.new_key,
        match r.new {
            Some(a) => format!("exists: {a}"),
            None if opts.new_key.is_some() => "does NOT exist: the rotation would stop here".into(),
            None => "would be created".into(),
        }
    ));
    let new = r.new.unwrap_or(Address::ZERO);
    for c in chains {
        let balance = c.client.balance(old).await.map_err(chain_err(c.side))?;
        let amount = opts.fund.unwrap_or(balance / U256::from(2));
        ui.say(&format!(
            "[2/7] fund     {}: tx from {old} to {new_text}, value {} coins, no calldata",
            c.side,
            coins(amount)
        ));
    }
    for c in chains {
        let tx = propose_tx(c, new);
        ui.say(&format!(
            "[3/7] propose  {}: tx from {old} to bridge {}: {} calldata {}",
            c.side,
            c.bridge,
            tx.what.replace(&Address::ZERO.to_string(), &new_text),
            tx.input
        ));
    }
    for c in chains {
        let tx = accept_tx(c, old);
        ui.say(&format!(
            "[4/7] accept   {}: tx from {new_text} to bridge {}: {} calldata {}",
            c.side, c.bridge, tx.what, tx.input
        ));
    }
    ui.say(&format!(
        "[5/7] switch   the agent at {} switches each chain to the new key once its seat moved",
        opts.config.agent_http_address()
    ));
    for c in chains {
        ui.say(&format!(
            "[6/7] sweep    {}: tx from {old} to {new_text}: the balance left minus 21000 gas",
            c.side
        ));
    }
    ui.say(&format!(
        "[7/7] retire   {old}{}",
        if opts.destroy_old {
            ", then destroy the old key (after confirmation)"
        } else {
            ""
        }
    ));
    Ok(Summary {
        rotation: None,
        old,
        new: r.new,
        dry_run: true,
    })
}
