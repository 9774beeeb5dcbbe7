//! Fencing off the loop: one worker thread runs fence devices (IPMI sessions, fence agents,
//! each bounded by its device's timeout) one at a time, and hands each result back over a
//! crossbeam channel, waking the loop through a mio [`Waker`]. The loop never waits for a
//! device: adverts and heartbeats go on while a fence runs or hangs until its timeout.
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::{Registry, Token, Waker};

/// A fence to run: the work itself (blocking, bounded by the device's timeout) for `peer`.
pub struct FenceJob {
    pub peer: u8,
    /// Runs on the worker; `Err` carries the reason for `fence-failed`.
    pub run: Box<dyn FnOnce() -> Result<String, String> + Send>,
}

/// What a job came to: the peer and `Ok(outcome)` or `Err(reason)`.
pub struct FenceDone {
    pub peer: u8,
    pub result: Result<String, String>,
}

/// See the module documentation.
pub struct FenceWorker {
    jobs: Option<Sender<FenceJob>>,
    done: Receiver<FenceDone>,
    thread: Option<JoinHandle<()>>,
}

/// Results read per loop turn at most (the channel holds one per job: a handful).
const DRAIN_BUDGET: usize = 16;

impl FenceWorker {
    /// Starts the worker thread; results wake the loop with `token`.
    pub fn start(registry: &Registry, token: Token) -> io::Result<Self> {
        let waker = Arc::new(Waker::new(registry, token)?);
        let (jobs, job_rx) = crossbeam_channel::unbounded::<FenceJob>();
        let (done_tx, done) = crossbeam_channel::unbounded::<FenceDone>();
        let thread = std::thread::Builder::new()
            .name("relevo-fence".to_string())
            .spawn(move || {
                for job in job_rx {
                    let result = (job.run)();
                    if done_tx
                        .send(FenceDone {
                            peer: job.peer,
                            result,
                        })
                        .is_err()
                    {
                        return; // the loop is gone
                    }
                    // A failed wake only delays the result to the loop's next turn.
                    let _ = waker.wake();
                }
            })?;
        Ok(FenceWorker {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Queues a job; it runs after the ones before it.
    pub fn submit(&self, job: FenceJob) -> Result<(), String> {
        match &self.jobs {
            Some(jobs) => jobs
                .send(job)
                .map_err(|_| "the fence worker thread is gone".to_string()),
            None => Err("the fence worker is stopped".to_string()),
        }
    }

    /// Results that arrived (a bounded batch; call again on the next wake or turn).
    pub fn drain(&self, out: &mut Vec<FenceDone>) {
        for _ in 0..DRAIN_BUDGET {
            match self.done.try_recv() {
                Ok(done) => out.push(done),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }
}

impl Drop for FenceWorker {
    /// Closes the job queue; a fence still running is not waited for (it is bounded by its
    /// timeout, and the process is exiting).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    #[test]
    fn a_result_wakes_the_loop_and_a_slow_job_does_not_block_it() {
        let mut poll = Poll::new().unwrap();
        let worker = FenceWorker::start(poll.registry(), Token(7)).unwrap();
        worker
            .submit(FenceJob {
                peer: 2,
                run: Box::new(|| {
                    std::thread::sleep(Duration::from_millis(200));
                    Err("timed out".to_string())
                }),
            })
            .unwrap();
        worker
            .submit(FenceJob {
                peer: 3,
                run: Box::new(|| Ok("power off".to_string())),
            })
            .unwrap();
        // The loop is free meanwhile: nothing arrived yet.
        let mut out = Vec::new();
        worker.drain(&mut out);
        assert!(out.is_empty());
        let mut events = Events::with_capacity(4);
        let mut got = Vec::new();
        while got.len() < 2 {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            assert!(
                events.iter().any(|e| e.token() == Token(7)),
                "woken by the worker"
            );
            worker.drain(&mut got);
        }
        assert_eq!(got[0].peer, 2);
        assert_eq!(got[0].result, Err("timed out".to_string()));
        assert_eq!(got[1].peer, 3);
        assert_eq!(got[1].result, Ok("power off".to_string()));
    }
}
