// The published declarations of each package against its committed API report (api/*.api.md):
// a change to the public surface (a new export, an internal type leaking through a signature, a
// changed member) fails here until the report is regenerated on purpose with `npm run api:update`
// and the diff reviewed. api-extractor also fails on a type the declarations use but the entry point
// does not export (ae-forgotten-export): how internals leaked into the surface before.
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import apiExtractor from '@microsoft/api-extractor';

const { Extractor, ExtractorConfig } = apiExtractor;

describe('API reports (npm run api:check)', function () {
  this.timeout(120_000);

  for (const name of ['abstractions', 'core', 'worker']) {
    it(`@process-sandbox/${name}'s published declarations match api/${name}.api.md`, () => {
      const config = ExtractorConfig.loadFileAndPrepare(fileURLToPath(new URL(`../packages/${name}/api-extractor.json`, import.meta.url)));
      const messages = [];
      const result = Extractor.invoke(config, {
        localBuild: false, // check: never rewrite the committed report
        messageCallback: (message) => {
          if (message.logLevel === 'error' || message.logLevel === 'warning') messages.push(message.formatMessageWithLocation(process.cwd()));
          message.handled = true;
        },
      });
      expect(result.apiReportChanged, `the public API of @process-sandbox/${name} changed: review the diff of api/temp/${name}.api.md against api/${name}.api.md, then run npm run api:update`).to.equal(false);
      expect(messages, 'api-extractor reported problems').to.deep.equal([]);
      expect(result.succeeded).to.equal(true);
    });
  }
});
