/** Names for containers created without --name, as docker makes them: adjective_noun. */
import { randomInt } from 'node:crypto';

const ADJECTIVES = [
  'brave', 'calm', 'clever', 'eager', 'fancy', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty',
  'proud', 'quick', 'quiet', 'sharp', 'shy', 'silly', 'sleepy', 'snappy', 'sunny', 'swift', 'tender', 'vivid',
  'wise', 'witty', 'young', 'zealous', 'bold', 'cosmic', 'dreamy', 'fervent',
];
const NOUNS = [
  'albatross', 'badger', 'beaver', 'bison', 'cheetah', 'condor', 'dolphin', 'falcon', 'ferret', 'gazelle', 'gecko',
  'heron', 'ibis', 'jaguar', 'koala', 'lemur', 'lynx', 'marmot', 'narwhal', 'ocelot', 'otter', 'panda', 'puffin',
  'quokka', 'raven', 'salmon', 'tapir', 'toucan', 'walrus', 'wombat', 'yak', 'zebra',
];

export function randomName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}`;
}
