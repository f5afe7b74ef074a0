import { expect } from 'chai';
import { ConfigurationError, ProcessProxy, QueueFullError, SerializationError, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('bad input gets a clear, named error', function () {
  afterEach(disposeProxies);

  it('workerOptions that cannot be encoded are refused up front (not an unhandled rejection in the host)', async () => {
    const error = await rejectionOf(ProcessProxy.create({ ...torture, workerOptions: { onEvent: () => 1 } }));
    expect(error).to.be.an.instanceOf(ConfigurationError);
    expect(error.option).to.equal('workerOptions');
    expect(error.message).to.match(/onEvent is a function/);
  });

  it('reload() with workerOptions that cannot be encoded is refused, and the pool keeps serving', async () => {
    const proxy = await createProxy(torture);
    const circular = {};
    circular.self = circular;
    const error = await rejectionOf(ProcessProxy.poolOf(proxy).reload({ workerOptions: circular }));
    expect(error).to.be.an.instanceOf(ConfigurationError);
    expect(await proxy.echo('still here')).to.equal('still here');
  });

  it('arguments larger than maxMessageBytes fail with SerializationError before anything is sent', async () => {
    const proxy = await createProxy({ ...torture, maxMessageBytes: 64 * 1024 });
    const pid = await proxy.pid();
    const error = await rejectionOf(proxy.echo(Buffer.alloc(100 * 1024)));
    expect(error).to.be.an.instanceOf(SerializationError);
    expect(error.message).to.match(/over maxMessageBytes \(65536\)/);
    expect(await proxy.pid()).to.equal(pid);
  });

  it('maxQueueSize: 0 still runs a call when a worker is idle, and refuses one that would wait', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, maxQueueSize: 0 });
    expect(await proxy.echo(1)).to.equal(1);
    const running = proxy.delayed('busy', 100);
    expect(await rejectionOf(proxy.echo(2))).to.be.an.instanceOf(QueueFullError);
    expect(await running).to.equal('busy');
  });

  it('the workerCrashed event names the method that was running', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const crashed = nextEvent(ProcessProxy.poolOf(proxy), 'workerCrashed');
    expect(await rejectionOf(proxy.exit(5))).to.be.an.instanceOf(WorkerCrashedError);
    expect(await crashed).to.include({ method: 'exit', exitCode: 5 });
  });

  it('limits enforced by sampling are refused when sampling is off', async () => {
    for (const option of ['idleTimeoutMs', 'maxProcessLifetimeMs', 'hardMemoryLimitMB']) {
      const error = await rejectionOf(ProcessProxy.create({ ...torture, healthIntervalMs: 0, [option]: 1000 }));
      expect(error).to.be.an.instanceOf(ConfigurationError);
      expect(error.option).to.equal(option);
    }
  });
});
