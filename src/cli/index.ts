console.log('bullpen: not yet')
