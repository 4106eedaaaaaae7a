//! The registry clients of one process, keyed by host and scheme, so that
//! every store on one host shares its tokens, credentials and connections.
//! `main` makes one [`RegistryClients`] and hands it down in
//! [`StoreOptions`](crate::store::StoreOptions); nothing is process-global,
//! so two independent callers (tests, a library user) never share tokens
//! by accident.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::client::RegistryClient;
use super::transport::Transport;
use crate::store::StoreError;

type ClientMap = HashMap<(String, Transport), Arc<RegistryClient>>;

/// A cheap handle: clones share the same clients.
#[derive(Clone, Default)]
pub struct RegistryClients {
    clients: Arc<Mutex<ClientMap>>,
}

impl RegistryClients {
    pub fn new() -> RegistryClients {
        RegistryClients::default()
    }

    /// The client for `host` over `transport`, made on first use.
    pub(super) fn client_for(
        &self,
        host: &str,
        transport: Transport,
    ) -> Result<Arc<RegistryClient>, StoreError> {
        // A panic elsewhere while holding the lock leaves the map intact:
        // inserting a client is the only mutation.
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (host.to_string(), transport);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = Arc::new(RegistryClient::new(host, transport)?);
        clients.insert(key, client.clone());
        Ok(client)
    }
}

impl fmt::Debug for RegistryClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.clients.lock().map_or(0, |c| c.len());
        write!(f, "RegistryClients({count} hosts)")
    }
}
