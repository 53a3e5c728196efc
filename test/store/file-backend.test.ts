import { FileBackend } from '../../src/store/file/file-backend.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import type { Backend } from '../../src/store/types.js';
import { faultyFs } from '../helpers/faulty-fs.js';
import { removeDir, silentLogger, tempDir } from '../helpers/unit-context.js';
import { storeContract, type ContractHarness } from './contract.js';

/** The contract against the JSON files: a fresh data directory per test, faults injected into its file calls. */
storeContract('files', async (): Promise<ContractHarness> => {
  const dir = await tempDir('latchkey-contract-');
  const faults = faultyFs();
  const open: Backend[] = [];
  return {
    open: async () => {
      const { backend } = await FileBackend.open({ dataDir: dir, logger: silentLogger(), random: cryptoRandom, fs: faults.fs });
      open.push(backend);
      return backend;
    },
    breakStorage: async () => {
      faults.fail('write', 'EIO');
      return async () => faults.fail(undefined);
    },
    destroy: async () => {
      faults.fail(undefined);
      for (const backend of open) await backend.close();
      await removeDir(dir);
    },
  };
});
