// The lifecycle suite of test/api/transitions.test.ts again, with every
// harness on the Vault backend (against its own fake Vault): suspend revokes
// leases and ends sessions, rotation, wipe, exactly as with the local backend.
process.env.TEST_SECRETS_BACKEND = 'vault'
await import('./transitions.test.js')
