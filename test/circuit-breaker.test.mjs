// The CircuitBreaker class on its own, with a fake clock: its rule (start-up deaths open it, a
// worker's first served call closes it, a death with a call to blame says nothing) and its back-off,
// checked in microseconds. The pool's use of it, with real processes: resilience.test.mjs.
import { expect } from 'chai';
import { CircuitOpenError } from '@process-sandbox/core';

const { CircuitBreaker } = await import(new URL('../packages/core/dist/circuit-breaker.js', import.meta.url).href);

function setup() {
  const clock = { t: 1_000_000 };
  const breaker = new CircuitBreaker(() => clock.t);
  let nextId = 1;
  const start = () => breaker.tryStart(() => ({ id: nextId++ }));
  return { clock, breaker, start };
}

const boom = (n) => new Error(`start failure ${n}`);

describe('CircuitBreaker (fake clock)', function () {
  it('stays closed through two young deaths and opens on the third, refusing starts and calls', () => {
    const { breaker, start } = setup();
    for (let i = 1; i <= 2; i++) {
      expect(breaker.youngDeath(start(), boom(i))).to.equal(false);
      expect(breaker.state).to.equal('closed');
    }
    expect(breaker.youngDeath(start(), boom(3))).to.equal(true);
    expect(breaker.state).to.equal('open');
    expect(start()).to.equal(undefined);
    const error = (() => {
      try {
        breaker.check();
      } catch (e) {
        return e;
      }
    })();
    expect(error).to.be.an.instanceOf(CircuitOpenError);
    expect(error.lastError.message).to.equal('start failure 3');
    expect(error.retryAt).to.equal(breaker.retryAt);
  });

  it('counts nothing for workers that end with a call to blame, however many', () => {
    const { breaker, start } = setup();
    for (let i = 0; i < 1000; i++) breaker.ended(start());
    expect(breaker.state).to.equal('closed');
    expect(breaker.youngDeaths).to.equal(0);
    // Interleaved with young deaths, they neither count nor clear the record.
    breaker.youngDeath(start(), boom(1));
    breaker.ended(start());
    breaker.youngDeath(start(), boom(2));
    breaker.ended(start());
    expect(breaker.youngDeaths).to.equal(2);
    expect(breaker.youngDeath(start(), boom(3))).to.equal(true);
  });

  it('a worker serving its first call clears the record of young deaths', () => {
    const { breaker, start } = setup();
    breaker.youngDeath(start(), boom(1));
    breaker.youngDeath(start(), boom(2));
    breaker.survived(start());
    expect(breaker.youngDeaths).to.equal(0);
    breaker.youngDeath(start(), boom(3));
    breaker.youngDeath(start(), boom(4));
    expect(breaker.state).to.equal('closed');
  });

  it('is half-open after the back-off: exactly one probe may start until it has a verdict', () => {
    const { clock, breaker, start } = setup();
    for (let i = 1; i <= 3; i++) breaker.youngDeath(start(), boom(i));
    expect(breaker.retryAt - clock.t).to.equal(500);
    clock.t += 499;
    expect(breaker.state).to.equal('open');
    clock.t += 1;
    expect(breaker.state).to.equal('halfOpen');
    expect(() => breaker.check()).not.to.throw();
    const probe = start();
    expect(probe).to.not.equal(undefined);
    expect(start(), 'a second probe').to.equal(undefined);
    // Another worker (started before the opening) ending says nothing about the probe.
    breaker.ended({ id: 'older' });
    expect(start()).to.equal(undefined);
    // The probe killed by the call it ran: no verdict, another probe may start.
    breaker.ended(probe);
    const second = start();
    expect(second).to.not.equal(undefined);
    breaker.survived(second);
    expect(breaker.state).to.equal('closed');
    expect(start()).to.not.equal(undefined);
  });

  it('a probe that dies young reopens the circuit with a doubled back-off, up to 30 s; a survival resets it', () => {
    const { clock, breaker, start } = setup();
    for (let i = 1; i <= 3; i++) breaker.youngDeath(start(), boom(i));
    const backoffs = [breaker.retryAt - clock.t];
    for (let i = 0; i < 8; i++) {
      clock.t = breaker.retryAt;
      expect(breaker.state).to.equal('halfOpen');
      expect(breaker.youngDeath(start(), boom(10 + i))).to.equal(true);
      backoffs.push(breaker.retryAt - clock.t);
    }
    expect(backoffs).to.deep.equal([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    clock.t = breaker.retryAt;
    breaker.survived(start());
    expect(breaker.state).to.equal('closed');
    for (let i = 1; i <= 3; i++) breaker.youngDeath(start(), boom(i));
    expect(breaker.retryAt - clock.t).to.equal(500);
  });

  it('young deaths of workers started before the opening do not stretch the running back-off', () => {
    const { clock, breaker, start } = setup();
    const early = [start(), start()];
    for (let i = 1; i <= 3; i++) breaker.youngDeath(start(), boom(i));
    const retryAt = breaker.retryAt;
    clock.t += 100;
    expect(breaker.youngDeath(early[0], boom(4))).to.equal(false);
    expect(breaker.youngDeath(early[1], boom(5))).to.equal(false);
    expect(breaker.retryAt).to.equal(retryAt);
    expect(breaker.state).to.equal('open');
  });
});
