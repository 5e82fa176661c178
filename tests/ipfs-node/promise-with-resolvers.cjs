// Promise.withResolvers arrived in Node 22; js-ipfs 0.66 calls it. Loaded with
// NODE_OPTIONS=--require <this file> so the daemon runs on Node 18 and 20 too.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
