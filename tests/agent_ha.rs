//! Vault HA (issue 6, item 3): a real 3-node OpenBao cluster with raft storage on loopback
//! ports. The agent is given all three addresses; the active node is killed while a client
//! keeps reading. Serving must not be interrupted, and the lease must go on being renewed
//! through the node elected next.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::support::{aws::free_port, eventually, Agent, Stack};

/// One `bao server` with raft storage.
struct Node {
    api: String,
    child: Option<Child>,
}

/// A 3-node raft cluster, initialised and unsealed, every node a voter.
struct Cluster {
    nodes: Vec<Node>,
    root_token: String,
    _dir: tempfile::TempDir,
}

fn call(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Result<Value, String> {
    let mut request = ureq::request(method, &format!("{addr}/v1/{path}")).timeout(Duration::from_secs(5));
    if let Some(token) = token {
        request = request.set("X-Vault-Token", token);
    }
    let answer = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    match answer {
        Ok(r) => Ok(r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => Err(format!("{code}: {}", r.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}

impl Node {
    fn start(dir: &Path, id: usize) -> Node {
        let bin = std::env::var("SIDEKEY_TEST_BAO_BIN").expect("tests/run.sh sets SIDEKEY_TEST_BAO_BIN");
        let (port, cluster_port) = (free_port(), free_port());
        let data = dir.join(format!("n{id}"));
        std::fs::create_dir(&data).unwrap();
        let config = dir.join(format!("n{id}.hcl"));
        std::fs::write(
            &config,
            format!(
                "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"n{id}\"\n  performance_multiplier = 1\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"https://127.0.0.1:{cluster_port}\"\ndisable_mlock = true\n",
                data.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("n{id}.log"))).unwrap();
        let child = Command::new(bin)
            .args(["server", "-config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let api = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(20), "an OpenBao node listening", || {
            // 501 (not initialised) or 503 (sealed): it answers.
            ureq::get(&format!("{api}/v1/sys/health"))
                .call()
                .err()
                .and_then(|e| match e {
                    ureq::Error::Status(..) => Some(()),
                    ureq::Error::Transport(_) => None,
                })
        });
        Node {
            api,
            child: Some(child),
        }
    }

    fn is_active(&self) -> bool {
        call(&self.api, "GET", "sys/leader", None, None).is_ok_and(|v| v["is_self"] == true)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Node> = (1..=3).map(|id| Node::start(dir.path(), id)).collect();
        let first = &nodes[0].api;
        let init = call(
            first,
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .expect("init");
        let key = init["keys_base64"][0].as_str().unwrap().to_owned();
        let root_token = init["root_token"].as_str().unwrap().to_owned();
        call(first, "PUT", "sys/unseal", None, Some(json!({ "key": key }))).expect("unseal n1");
        eventually(Duration::from_secs(20), "n1 active", || {
            nodes[0].is_active().then_some(())
        });
        // Promote joining nodes to voters after 1 s of health instead of 10 s.
        call(
            first,
            "POST",
            "sys/storage/raft/autopilot/configuration",
            Some(&root_token),
            Some(json!({"server_stabilization_time": "1s"})),
        )
        .expect("autopilot configuration");
        for node in &nodes[1..] {
            call(
                &node.api,
                "PUT",
                "sys/storage/raft/join",
                None,
                Some(json!({ "leader_api_addr": first })),
            )
            .expect("join");
            call(&node.api, "PUT", "sys/unseal", None, Some(json!({ "key": key }))).expect("unseal");
        }
        eventually(Duration::from_secs(60), "three raft voters", || {
            let config = call(first, "GET", "sys/storage/raft/configuration", Some(&root_token), None).ok()?;
            let servers = config["data"]["config"]["servers"].as_array()?.clone();
            (servers.len() == 3 && servers.iter().all(|s| s["voter"] == true)).then_some(())
        });
        Cluster {
            nodes,
            root_token,
            _dir: dir,
        }
    }

    fn active(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.child.is_some() && n.is_active())
    }
}

fn expires_at(answer: &Value) -> SystemTime {
    humantime::parse_rfc3339(answer["lease"]["expires_at"].as_str().unwrap()).unwrap()
}

#[test]
fn killing_the_active_node_neither_interrupts_serving_nor_stops_renewal() {
    let t0 = Instant::now();
    let mut cluster = Cluster::start();
    println!("ha: 3-node raft cluster up in {:?}", t0.elapsed());
    let active = cluster.active().expect("an active node");
    let admin = Stack {
        vault_addr: cluster.nodes[active].api.clone(),
        vault_token: cluster.root_token.clone(),
        ..Stack::get().clone()
    };
    let mount = "db-ha";
    admin.database_engine_at(mount, "6s", "1h");
    // The agent's own token has a TTL too, so its renewal must also cross the failover.
    let token = admin.vault_write("auth/token/create", json!({"ttl": "15s", "policies": ["root"]}))["auth"]
        ["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The active node is listed last: the agent must find it rather than take the first.
    let mut order: Vec<usize> = (0..3).filter(|&i| i != active).collect();
    order.push(active);
    let addresses: Vec<String> = order.iter().map(|&i| format!("\"{}\"", cluster.nodes[i].api)).collect();
    let config = format!(
        "[backends.vault]\ntype = \"vault\"\naddress = [{}]\nauth = {{ method = \"token\", token_file = \"@DIR@/token\" }}\n\n\
         [secrets.db]\nbackend = \"vault\"\nkind = \"vault.database\"\nmount = \"{mount}\"\nrole = \"app\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"db\"]\n",
        addresses.join(", ")
    );
    let agent = Agent::start_with_files(&config, &[("token", &token)]);
    let first = agent.wait_served("db", Duration::from_secs(30));
    let apis: Vec<String> = cluster.nodes.iter().map(|n| n.api.clone()).collect();
    let follows = |node: usize| {
        agent
            .stderr()
            .lines()
            .any(|l| l.contains("using another Vault node") && l.contains("active=true") && l.contains(&apis[node]))
    };
    assert!(follows(active), "the agent uses the active node: {}", agent.stderr());

    cluster.nodes[active].kill();
    let killed = SystemTime::now();

    // Keep reading for three TTLs: every read answers the same credential, and its lease
    // ends later and later, renewed through whichever node is active now.
    let (mut reads, mut failed) = (0u32, Vec::new());
    let mut latest = first.clone();
    let until = Instant::now() + Duration::from_secs(18);
    while Instant::now() < until {
        let r = agent.http("/v1/secrets/db");
        reads += 1;
        if r.status == 200 {
            latest = r.json();
        } else {
            failed.push(format!("{} {}", r.status, r.body));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(failed.is_empty(), "reads failed during the failover: {failed:?}");
    assert_eq!(latest["version"], first["version"], "the same credential throughout");
    assert_eq!(latest["lease"]["id"], first["lease"]["id"]);
    let renewed_for = expires_at(&latest)
        .duration_since(killed)
        .expect("the lease outlives the kill");
    assert!(
        renewed_for > Duration::from_secs(12),
        "renewed after the kill: ends {renewed_for:?} after it"
    );
    let new_active = cluster.active().expect("a new active node");
    assert_ne!(new_active, active);
    assert!(
        follows(new_active),
        "the agent moved to the new active node: {}",
        agent.stderr()
    );
    let renewals: Vec<SystemTime> = agent
        .audit()
        .iter()
        .filter(|e| e["event"] == "renew" && e["secret"] == "db")
        .map(|e| humantime::parse_rfc3339(e["ts"].as_str().unwrap()).unwrap())
        .filter(|&t| t > killed)
        .collect();
    let renewals_after = renewals.len();
    assert!(renewals_after >= 2, "renewals after the kill: {renewals_after}");

    // The renewals were real: PostgreSQL still accepts the credential well past the TTL it
    // was issued with, and the new leader knows the lease.
    let (user, password) = (
        latest["data"]["username"].as_str().unwrap(),
        latest["data"]["password"].as_str().unwrap(),
    );
    Stack::get()
        .pg_login(user, password)
        .expect("the renewed credential logs in");
    let lookup = call(
        &cluster.nodes[new_active].api,
        "PUT",
        "sys/leases/lookup",
        Some(&cluster.root_token),
        Some(json!({ "lease_id": first["lease"]["id"] })),
    )
    .expect("the new leader knows the lease");
    assert!(lookup["data"]["ttl"].as_u64().unwrap() > 0, "{lookup}");
    assert_eq!(agent.http("/v1/health").json()["status"], "ok");
    println!(
        "ha: {reads} reads over 18 s after killing the active node, none failed; {renewals_after} renewals through n{}, the first {:?} after the kill",
        new_active + 1,
        renewals[0].duration_since(killed).unwrap()
    );
}
