/**
 * meshctl: the operator CLI (istioctl's counterpart). `proxy-status` and `proxy-config` ask a
 * running meshd over xDS, as istioctl asks istiod; `kube-inject` injects sidecars into workload
 * YAML offline; `validate` checks Istio/Kubernetes config as the folder source and the
 * validating webhook do; `analyze` and `x describe` check and explain config across objects,
 * from files or the cluster; `x route` and `x preview` simulate a request and preview a change;
 * `tag` manages revision tags (the webhooks that map a tag to a revision).
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { analyzeCommand } from './analyze';
import { experimentalCommand } from './describe';
import { kubeInjectCommand } from './kube-inject';
import { previewCommand } from './preview';
import { tagCommand } from './tag';
import { proxyConfigCommand, proxyStatusCommand, routeSimCommand } from './xds-commands';
import { validateFiles } from './validate';
import { MESHD_VERSION } from '../version';

export function meshctl(io = { stdout: process.stdout, stderr: process.stderr, stdin: (): string => fs.readFileSync(0, 'utf8') }): Command {
  const cmd = new Command('meshctl').description(
    'meshd command line: proxy status and config over xDS, offline sidecar injection and config validation, config analysis and describe, route simulation and change preview, revision tags',
  );
  cmd.addCommand(kubeInjectCommand(io));
  cmd.addCommand(proxyStatusCommand(io));
  cmd.addCommand(proxyConfigCommand(io));
  cmd.addCommand(analyzeCommand(io));
  // Experimental verbs, as istioctl's `x`: describe, and meshd's route simulator and change preview.
  const x = experimentalCommand(io);
  x.addCommand(routeSimCommand(io));
  x.addCommand(previewCommand(io));
  cmd.addCommand(x);
  cmd.addCommand(tagCommand(io));
  cmd
    .command('version')
    .description("print meshctl's version (meshd's, from the same package)")
    .action(() => {
      io.stdout.write(`client version: ${MESHD_VERSION}\n`);
    });
  cmd
    .command('validate')
    .description('check Istio/Kubernetes config files offline; exits 1 if any object is invalid')
    .option('-f, --filename <file>', 'file or folder to check (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .argument('[files...]', 'more files or folders')
    .action((files: string[], o: { filename: string[] }) => {
      const inputs = [...o.filename, ...files];
      if (inputs.length === 0) {
        io.stderr.write('validate: give files or folders (-f FILE or as arguments)\n');
        process.exitCode = 1;
        return;
      }
      const { output, ok } = validateFiles(inputs);
      io.stdout.write(output);
      process.exitCode = ok ? 0 : 1;
    });
  return cmd;
}

if (require.main === module) {
  meshctl()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`meshctl: ${(err as Error).message}\n`);
      process.exit(1);
    });
}
