import { cryptoRandom } from '../../src/crypto/secrets.js';
import { PostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import type { Backend } from '../../src/store/types.js';
import { emptyDatabase } from '../helpers/postgres.js';
import { useTestPostgres } from '../helpers/use-test-postgres.js';
import { silentLogger } from '../helpers/unit-context.js';
import { storeContract, type ContractHarness } from './contract.js';

/**
 * The contract against a real PostgreSQL (test/helpers/postgres.ts): every test starts on
 * emptied tables; a second instance is a second backend with its own pool; an outage is the
 * server stopped (fast shutdown, connections cut) and started again.
 */

const db = useTestPostgres();

storeContract(
  'postgres',
  async (): Promise<ContractHarness> => {
    // The schema is created by the first open; later tests start on emptied tables.
    await emptyDatabase(db().url);
    const open: Backend[] = [];
    const openOne = async (): Promise<Backend> => {
      const { backend } = await PostgresBackend.open({ url: db().url, logger: silentLogger(), random: cryptoRandom });
      open.push(backend);
      return backend;
    };
    return {
      open: openOne,
      openPeer: openOne,
      breakStorage: async () => {
        const { stop, start } = db();
        if (!stop || !start) throw new Error('an outage needs a server the tests started');
        await stop();
        return start;
      },
      destroy: async () => {
        for (const backend of open) await backend.close();
      },
    };
  },
  // On a server the tests did not start (OAUTH_TEST_DATABASE_URL) they cannot cause an outage.
  { outage: !process.env.OAUTH_TEST_DATABASE_URL },
);
